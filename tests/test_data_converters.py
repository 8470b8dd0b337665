"""VPT contractor, GF-Minecraft and MineRL v0 samples, written here in each format, read back."""

import json

import numpy as np
import pytest

from gameworld.actions import Action, ActionSpace
from gameworld.data import EpisodeError, detect_format, find_episodes, open_episode, write_episode
from gameworld.data.video import write_video


def vpt_line(keys=(), dx=0.0, dy=0.0, buttons=(), new_buttons=(), hotbar=0, gui=False, **fields) -> str:
    line = {
        "mouse": {"x": 640.0, "y": 360.0, "dx": dx, "dy": dy, "buttons": list(buttons),
                  "newButtons": list(new_buttons)},
        "keyboard": {"keys": list(keys), "newKeys": [], "chars": ""},
        "hotbar": hotbar, "isGuiOpen": gui, "tick": 0, **fields,
    }
    return json.dumps(line)


def write_vpt(stem, frames, lines):
    stem.parent.mkdir(parents=True, exist_ok=True)
    write_video(stem.with_suffix(".mp4"), frames, 20, lossless=True)
    stem.with_suffix(".jsonl").write_text("".join(line + "\n" for line in lines))


# Line i is the input given after frame i; the episode's a[t] is line t-1.
VPT_LINES = [
    vpt_line(["key.keyboard.w"], buttons=[0], new_buttons=[0]),  # attack held from before: stuck
    vpt_line(["key.keyboard.w", "key.keyboard.left.shift"], dx=20, dy=-10, buttons=[0]),  # still stuck
    vpt_line(["key.keyboard.escape"], buttons=[0], new_buttons=[0], hotbar=2, gui=True),  # pressed anew
    vpt_line(["key.keyboard.space"], dx=2000, buttons=[1], hotbar=2),  # 300 degrees: a glitch
    vpt_line(["key.keyboard.4"], buttons=[2], hotbar=3, xpos=1.5, ypos=64.0, zpos=-2.0, yaw=90.0, pitch=10.0),
    vpt_line(["key.keyboard.d"], dy=3),  # the last line: no frame follows it
]


def test_vpt_sample_reads_back_with_keys_camera_attack_hotbar_and_shift(tmp_path, make_frames):
    frames = make_frames(6)
    write_vpt(tmp_path / "cheeky-cornflower", frames, VPT_LINES)
    assert detect_format(tmp_path / "cheeky-cornflower.mp4")[0] == "vpt"
    ep = open_episode(tmp_path / "cheeky-cornflower")
    assert ep.actions == [
        Action.null(),
        Action.of("forward"),  # stuck attack dropped
        Action.of("forward", "sneak", camera=(-1.5, 3.0)),  # dy -10, dx 20 units at 0.15 degrees
        Action.of("attack", "hotbar.3"),  # button 0 pressed anew; hotbar slot 0 -> 2; escape ignored
        Action.of("jump", "use"),  # the 300-degree glitch zeroed
        Action.of("hotbar.4", "pickItem"),
    ]
    assert ep.meta["camera_glitches"] == 1 and ep.meta["source"] == "vpt" and ep.fps == 20.0
    assert [e["gui_open"] for e in ep.extras] == [False, False, True, False, False, False]
    assert ep.extras[4]["pose"] == {"x": 1.5, "y": 64.0, "z": -2.0, "yaw": 90.0, "pitch": 10.0}
    assert "pose" not in ep.extras[3]
    np.testing.assert_array_equal(np.stack(list(ep.frames())), frames)


def test_vpt_attack_that_is_not_stuck_comes_from_button_zero(tmp_path, make_frames):
    lines = [vpt_line(buttons=[0]), vpt_line(buttons=[0, 1]), vpt_line(dx=-4)]
    write_vpt(tmp_path / "clip", make_frames(3), lines)
    ep = open_episode(tmp_path / "clip.jsonl")
    assert ep.actions == [Action.null(), Action.of("attack"), Action.of("attack", "use")]
    assert ActionSpace.minecraft().resolve(ep.actions[2]).keys == set()  # attack + use cancel when encoded


@pytest.mark.parametrize(
    ("index", "line", "message"),
    [
        (2, "{broken", r"clip\.jsonl:3: not valid JSON"),
        (1, json.dumps({"keyboard": {"keys": []}}), r"clip\.jsonl:2: not a VPT action line .*mouse"),
        (1, vpt_line(hotbar=11), r"clip\.jsonl:2: .*hotbar slot must be 0\.\.8"),
        (0, "[]", r"clip\.jsonl:1: .*expected a JSON object"),
    ],
)
def test_bad_vpt_lines_name_file_and_line(tmp_path, make_frames, index, line, message):
    lines = [vpt_line() for _ in range(4)]
    lines[index] = line
    write_vpt(tmp_path / "clip", make_frames(4), lines)
    with pytest.raises(EpisodeError, match=message):
        open_episode(tmp_path / "clip")


def test_vpt_frame_and_line_counts_must_agree(tmp_path, make_frames):
    write_vpt(tmp_path / "clip", make_frames(4), [vpt_line() for _ in range(5)])
    with pytest.raises(EpisodeError, match=r"clip\.jsonl: 5 lines, but clip\.mp4 has 4 frames"):
        open_episode(tmp_path / "clip")


def gf_step(ws=0, ad=0, scs=0, pitch=0.0, yaw=0.0, pos=(0.0, 64.0, 0.0)):
    return {"ws": ws, "ad": ad, "scs": scs, "pitch_delta": pitch, "yaw_delta": yaw, "pos": list(pos)}


def write_gf(root, name, frames, steps):
    root.joinpath("video").mkdir(parents=True, exist_ok=True)
    root.joinpath("metadata").mkdir(exist_ok=True)
    write_video(root / "video" / f"{name}.mp4", frames, 16, lossless=True)
    metadata = {"biome": "desert", "actions": {str(i): step for i, step in enumerate(steps)}}
    (root / "metadata" / f"{name}.json").write_text(json.dumps(metadata))


def test_gf_minecraft_clip_reads_back(tmp_path, make_frames):
    steps = [
        gf_step(ws=1),  # nothing precedes frame 0: a[0] is null
        gf_step(ws=1, ad=2, scs=1, pitch=0.1, yaw=-0.2, pos=(1.0, 65.0, -3.5)),
        gf_step(ws=2, ad=1, scs=3),
        gf_step(scs=2, yaw=20.0),  # 300 degrees: a glitch
        gf_step(),
    ]
    frames = make_frames(5)
    write_gf(tmp_path / "data_269", "seed_1_part_1", frames, steps)
    for path in ("video/seed_1_part_1.mp4", "metadata/seed_1_part_1.json"):
        assert detect_format(tmp_path / "data_269" / path)[0] == "gf-minecraft"
    ep = open_episode(tmp_path / "data_269" / "video" / "seed_1_part_1.mp4")
    assert ep.actions == [
        Action.null(),
        Action.of("forward", "right", "jump", camera=(1.5, -3.0)),
        Action.of("back", "left", "sprint"),
        Action.of("sneak"),
        Action.null(),
    ]
    assert ep.extras[1] == {"pose": {"x": 1.0, "y": 65.0, "z": -3.5}}
    assert ep.meta["camera_glitches"] == 1 and ep.meta["source_meta"] == {"biome": "desert"}
    assert ep.fps == 16.0
    np.testing.assert_array_equal(ep.read_frames(1, 4), frames[1:4])


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([gf_step(), gf_step(), gf_step(ws=5)], r"seed\.json: action \"2\": ws must be one of \[0, 1, 2\]"),
        ([gf_step(), gf_step(scs=True), gf_step()], r"action \"1\": scs must be one of"),
        ({"0": gf_step(), "1": gf_step(), "3": gf_step()}, r"actions has 3 entries but no entry \"2\""),
        ([gf_step(), gf_step()], r"seed\.json: 2 actions but seed\.mp4 has 3 frames"),
    ],
)
def test_bad_gf_metadata_names_file_and_action(tmp_path, make_frames, steps, message):
    write_gf(tmp_path, "seed", make_frames(3), [])
    actions = steps if isinstance(steps, dict) else {str(i): s for i, s in enumerate(steps)}
    (tmp_path / "metadata" / "seed.json").write_text(json.dumps({"actions": actions}))
    with pytest.raises(EpisodeError, match=message):
        open_episode(tmp_path / "metadata" / "seed.json")


def write_minerl(directory, frames, **arrays):
    directory.mkdir(parents=True)
    write_video(directory / "recording.mp4", frames, 20, lossless=True)
    np.savez(directory / "rendered.npz", **{f"action${k}": v for k, v in arrays.items()}, reward=np.zeros(3))
    (directory / "metadata.json").write_text(json.dumps({"true_video_frame_count": len(frames)}))


def test_minerl_v0_recording_reads_back(tmp_path, make_frames):
    frames = make_frames(6)  # 2 frames before the experiment, then 4 states around 3 steps
    write_minerl(
        tmp_path / "v3_sample",
        frames,
        forward=np.array([1, 0, 1]),
        attack=np.array([0, 1, 0]),
        jump=np.array([0, 0, 1]),
        camera=np.array([[0.0, 2.5], [-1.0, 0.0], [0.0, 400.0]], dtype=np.float32),
        place=np.array(["none", "dirt", "none"]),
        craft=np.array(["none", {"not": "plain data"}, "none"], dtype=object),  # needs pickle: skipped
    )
    assert detect_format(tmp_path / "v3_sample")[0] == "minerl-v0"
    ep = open_episode(tmp_path / "v3_sample")
    assert ep.actions == [
        Action.null(),
        Action.of("forward", camera=(0.0, 2.5)),
        Action.of("attack", "use", camera=(-1.0, 0.0)),
        Action.of("forward", "jump"),  # the 400-degree turn is a glitch
    ]
    assert ep.meta["skipped_arrays"] == ["action$craft"] and ep.meta["camera_glitches"] == 1
    assert ep.frame_offset == 2
    np.testing.assert_array_equal(np.stack(list(ep.frames())), frames[2:])
    np.testing.assert_array_equal(ep.read_frames(1, 3), frames[3:5])


def test_bad_minerl_files_are_episode_errors(tmp_path, make_frames):
    write_minerl(tmp_path / "short", make_frames(3), forward=np.ones(3), camera=np.zeros((3, 2)))
    with pytest.raises(EpisodeError, match=r"recording\.mp4: 3 frames; rendered\.npz needs 4 states"):
        open_episode(tmp_path / "short")
    write_minerl(tmp_path / "ragged", make_frames(5), forward=np.ones(2), camera=np.zeros((3, 2)))
    with pytest.raises(EpisodeError, match=r"rendered\.npz: action\$forward has 2 rows, action\$camera 3"):
        open_episode(tmp_path / "ragged")
    write_minerl(tmp_path / "garbled", make_frames(5), camera=np.zeros((3, 2)))
    (tmp_path / "garbled" / "rendered.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(EpisodeError, match=r"rendered\.npz: cannot read the npz archive"):
        open_episode(tmp_path / "garbled")


def test_find_episodes_lists_every_complete_episode_once(tmp_path, make_frames):
    frames = make_frames(3)
    write_episode(tmp_path / "native" / "ep_0", frames, [Action.null()] * 3)
    write_episode(tmp_path / "native" / "ep_1", frames, [Action.null()] * 3)
    (tmp_path / "native" / "ep_1.json").unlink()  # unfinished: left out, and not mistaken for VPT
    write_vpt(tmp_path / "vpt" / "player", frames, [vpt_line() for _ in range(3)])
    write_gf(tmp_path / "gf", "clip", frames, [gf_step() for _ in range(3)])
    write_minerl(tmp_path / "minerl" / "run", frames, camera=np.zeros((2, 2)))
    found = find_episodes(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "gf/metadata/clip.json", "minerl/run", "native/ep_0.json", "vpt/player.jsonl",
    ]
    assert [len(open_episode(p)) for p in found] == [3, 3, 3, 3]
    with pytest.raises(EpisodeError, match="unfinished native episode"):
        open_episode(tmp_path / "native" / "ep_1")
    with pytest.raises(EpisodeError, match="use find_episodes"):
        open_episode(tmp_path / "native")
    with pytest.raises(EpisodeError, match="no episode here"):
        open_episode(tmp_path / "native" / "missing")
