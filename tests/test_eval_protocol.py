"""The GameWorld Score protocol: exactly 76 actions with the right content, seeds, ground truth, layout,
and a mouse scored against the turns the game made."""

import numpy as np
import pytest
from PIL import Image

from gameworld.actions import Action
from gameworld.data import write_episode
from gameworld.metrics.controls import camera_class, labels_from_actions, turns_of_poses
from gameworld.metrics.evaluate import RowAccumulator, summarise
from gameworld.metrics.protocol import QUICK_ACTIONS, Protocol, long_rollout_actions, revisit_actions
from gameworld.metrics.report import gameworld_names
from gameworld.starts import fit_frames
from gameworld.voxel import BIOMES


def test_full_protocol_is_76_actions_by_8_biomes_by_4_starts():
    clips = Protocol("full").clips()
    assert len(clips) == 2432
    names = list(dict.fromkeys(c.name for c in clips))
    assert len(names) == 76 and len({c.key for c in clips}) == 2432
    assert {c.scene for c in clips} == set(BIOMES) and {c.start for c in clips} == {0, 1, 2, 3}
    assert all(len(c.actions) == 65 and c.actions[0] == Action.null() for c in clips)


def test_action_content_matches_the_names():
    clips = {c.name: c for c in Protocol("full", starts_per_biome=1).clips()}
    assert clips["forward"].actions[1].keys == {"forward"}
    assert clips["camera_ul"].actions[5].camera == (-5.0, -5.0)  # up = negative pitch, left = negative yaw
    assert clips["camera_dr"].actions[5].camera == (5.0, 5.0)
    assert clips["empty"].actions[30].is_null
    assert clips["back_right"].actions[3].keys == {"back", "right"}
    attack = [("attack" in a.keys) for a in clips["attack"].actions]
    assert attack[8:16] == [True] * 8 and attack[1:8] == [False] * 7 and attack[16] is False
    jump_cam = clips["jump_camera_l"].actions[10]
    assert jump_cam.keys == {"jump"} and jump_cam.camera == (0.0, -5.0)
    labels = labels_from_actions(clips["left_camera_down"].actions)
    assert labels.strafe[1] == 1 and labels.camera[1] == camera_class(5.0, 0.0) == 6


def test_quick_protocol_is_a_fixed_documented_subset_with_distinct_held_out_worlds():
    clips = Protocol("quick").clips()
    assert [c.name for c in clips] == list(QUICK_ACTIONS)
    assert {c.scene for c in clips} == set(BIOMES)
    assert all(c.seed >= 100_000 for c in clips)
    assert clips == Protocol("quick").clips()
    elsewhere = Protocol("quick", seed_base=100_050).clips()
    assert [c.seed for c in elsewhere] == [c.seed + 50 for c in clips]
    assert [c.actions for c in elsewhere] == [c.actions for c in clips]  # the same clips, other worlds
    with pytest.raises(ValueError, match="seed_base"):
        Protocol("quick", seed_base=-1)


def test_user_starts_play_the_same_clips_from_the_users_frames(tmp_path, make_frames):
    frames = make_frames(6, height=40, width=80)
    actions = [Action.null()] + [Action.of("forward")] * 5
    episode = write_episode(tmp_path / "real" / "ep", frames, actions, lossless=True)
    Image.fromarray(frames[2]).save(tmp_path / "shot.png")
    paths = (str(tmp_path / "shot.png"), str(episode))
    quick = Protocol("quick", width=64, height=32, context=3, starts_from=paths)
    assert not quick.has_ground_truth and Protocol("quick").has_ground_truth
    clips = quick.clips()
    assert [c.name for c in clips] == list(QUICK_ACTIONS) and {c.seed for c in clips} == {None}
    assert [(c.scene, c.start) for c in clips[:3]] == [("shot", 0), ("ep", 1), ("shot", 0)]
    assert len({c.key for c in Protocol("full", starts_from=paths).clips()}) == 76 * 2

    image, image_actions = quick.user_start(0)
    assert image.shape == (1, 32, 64, 3) and image_actions == [Action.null()]
    assert np.abs(image[0].astype(int) - fit_frames(frames[2:3], 64, 32)[0]).max() <= 1
    context, context_actions = quick.user_start(1)  # the episode's first 3 frames and their actions
    assert np.array_equal(context, fit_frames(frames[:3], 64, 32)) and context_actions == actions[:3]
    with pytest.raises(ValueError, match="no ground truth"):
        quick.ground_truth(clips[0])

    (tmp_path / "notes.png").write_text("not an image")
    for bad, message in (("missing.mp4", "no such video"), ("notes.png", "notes.png: not an image")):
        with pytest.raises((FileNotFoundError, ValueError), match=message):
            Protocol("quick", starts_from=(str(tmp_path / bad),)).user_start(0)


def test_ground_truth_is_reproducible_and_starts_from_the_context():
    protocol = Protocol("quick", width=32, height=18, frames=6, context=3)
    clip = protocol.clips()[9]  # camera_r
    context, frames, context_actions, poses = protocol.ground_truth(clip)
    again = protocol.ground_truth(clip)
    assert context.shape == (3, 18, 32, 3) and frames.shape == (6, 18, 32, 3) and len(context_actions) == 3
    assert np.array_equal(frames, again[1]) and np.array_equal(frames[0], context[-1])
    turned = (poses[-1]["yaw"] - poses[0]["yaw"] + 180) % 360 - 180
    assert turned == pytest.approx(25.0)


def test_turns_of_poses_take_yaw_the_short_way_round():
    poses = [{"pitch": 0.0, "yaw": 179.0}, {"pitch": -5.0, "yaw": -179.0}, {"pitch": -5.0, "yaw": 170.0}]
    assert turns_of_poses(poses).tolist() == [[0.0, 0.0], [-5.0, 2.0], [0.0, -11.0]]


def test_the_mouse_is_scored_against_the_turns_the_game_made_where_the_pitch_stops():
    protocol = Protocol("quick", width=32, height=18, frames=24, context=3)
    clip = next(c for c in protocol.clips() if c.name == "camera_up")
    _, frames, _, poses = protocol.ground_truth(clip)
    made = turns_of_poses(poses)  # [24, 2]
    assert poses[0]["pitch"] == 0.0 and poses[-1]["pitch"] == -90.0
    assert np.allclose(made[1:19, 0], -5.0) and np.allclose(made[19:, 0], 0.0)  # straight up after 18
    asked = labels_from_actions(list(clip.actions))
    as_made = [Action(a.keys, tuple(turn)) for a, turn in zip(clip.actions, made, strict=True)]
    reader = labels_from_actions(as_made)
    row = RowAccumulator(clips=[clip], mse=[np.ones(24)], ssim=[np.ones(24)], predicted=[reader],
                         asked=[asked], made=[reader], camera_error=[np.zeros((24, 2))],
                         cosine_consecutive=[1.0], cosine_to_first=[1.0])
    summary = summarise(row, None)  # an IDM that reads the view's motion exactly
    assert summary["mouse_accuracy"] == 1.0
    assert summary["mouse_accuracy_asked"] == pytest.approx(18 / 23)  # "up" asked on 5 still frames
    assert summary["per_action"]["camera_up"]["mouse_accuracy_asked"] == pytest.approx(18 / 23)


def test_official_layout_groups_actions_in_sorted_order():
    clips = Protocol("full", starts_per_biome=1).clips()
    names = gameworld_names(clips)
    files = sorted(names.values())
    assert files[0] == "0000_attack.mp4" and files[-1] == f"{len(clips) - 1:04d}_right_jump.mp4"
    assert files[8] == "0008_attack_camera_dl.mp4"  # 8 starts of "attack", then the next action


def test_long_and_revisit_scripts():
    walk = long_rollout_actions("walk", 100)
    assert len(walk) == 100 and all("forward" in a.keys for a in walk)
    assert all(a.is_null for a in long_rollout_actions("idle", 10))
    turn, back = revisit_actions("turn")
    assert sum(a.camera[1] for a in turn) == 360.0 and back == len(turn) - 1
    with pytest.raises(ValueError, match="unknown protocol"):
        Protocol("medium")
