"""Scripted players: the 76 GameWorld Score clips exactly, and seeded human-like play covering everything."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from gameworld.actions import Action, ActionSpace
from gameworld.voxel import VoxelWorld
from gameworld.voxel.players import (
    PLAYER_PRESETS,
    PlayerConfig,
    ScriptedPlayer,
    gameworld_score_actions,
    score_keys_at,
    score_specs,
)

MOVE_KEYS = ("forward", "back", "left", "right", "jump", "sneak", "sprint", "attack", "use")
HOTBAR_KEYS = tuple(f"hotbar.{n}" for n in range(1, 10))


def direction(action: Action) -> tuple[int, int]:
    """Sign of (dpitch, dyaw), ignoring turns under a quarter degree."""
    pitch, yaw = action.camera
    return (pitch > 0.25) - (pitch < -0.25), (yaw > 0.25) - (yaw < -0.25)


def test_score_clips_are_the_76_of_bench76():
    clips = dict(gameworld_score_actions())
    assert len(clips) == 76 and all(len(c) == 65 for c in clips.values())
    singles = {"forward", "back", "left", "right", "jump", "attack"}
    cameras = {f"camera_{d}" for d in ("up", "down", "l", "r", "ul", "ur", "dl", "dr")}
    pairs = {
        "forward_attack", "forward_jump", "forward_left", "forward_right", "back_attack", "back_jump",
        "back_left", "back_right", "left_attack", "left_jump", "right_attack", "right_jump", "jump_attack",
    }
    combos = {f"{k}_{c}" for k in singles for c in cameras}
    assert set(clips) == singles | cameras | {"empty"} | pairs | combos
    assert len(pairs) == 13 and len(combos) == 48


@pytest.mark.parametrize(
    "name, keys, camera",
    [
        ("forward", {"forward"}, (0.0, 0.0)),
        ("empty", set(), (0.0, 0.0)),
        ("camera_ur", set(), (-5.0, 5.0)),  # Bench76: "camera": [-5, 5] is up and right
        ("camera_dl", set(), (5.0, -5.0)),
        ("back_left", {"back", "left"}, (0.0, 0.0)),
        ("jump_camera_down", {"jump"}, (5.0, 0.0)),
        ("right_camera_l", {"right"}, (0.0, -5.0)),
    ],
)
def test_score_clip_contents(name, keys, camera):
    clip = dict(gameworld_score_actions())[name]
    assert all(a.keys == frozenset(keys) and a.camera == camera for a in clip)


def test_attack_is_pressed_only_in_frames_8_to_15_of_every_16():
    space = ActionSpace.minecraft()
    for name, clip in gameworld_score_actions():
        for idx, action in enumerate(clip):
            assert space.resolve(action) == action  # valid keys, no cancelling pairs
            expected = "attack" in name.split("_") and 8 <= idx % 16 <= 15
            assert ("attack" in action.keys) == expected, (name, idx)
    attack = dict(gameworld_score_actions())["forward_attack"]
    assert [i for i, a in enumerate(attack) if "attack" in a.keys][:9] == [8, 9, 10, 11, 12, 13, 14, 15, 24]


def test_score_clip_options_and_errors():
    clips = gameworld_score_actions(frames=17, camera_deg=2.5)
    assert all(len(c) == 17 for _, c in clips) and dict(clips)["camera_l"][0].camera == (0.0, -2.5)
    with pytest.raises(ValueError, match="frames"):
        gameworld_score_actions(frames=0)


def play(seed: int, biome: str, ticks: int) -> tuple[list[Action], list[dict]]:
    world = VoxelWorld(seed=seed, biome=biome, width=16, height=16)
    player = ScriptedPlayer(seed)
    world.reset()
    info = world.info()
    actions, infos = [], []
    for _ in range(ticks):
        action = player.act(info)
        info = world.advance(action)
        actions.append(action)
        infos.append(info)
    return actions, infos


def test_scripted_play_is_seeded():
    a, _ = play(11, "forest", 300)
    b, _ = play(11, "forest", 300)
    c, _ = play(12, "forest", 300)
    assert a == b and a != c


def test_scripted_play_covers_every_key_and_camera_direction_and_changes_the_world():
    keys, directions, events = Counter(), Counter(), Counter()
    for seed, biome in enumerate(("plains", "forest", "hills", "desert")):
        actions, infos = play(seed, biome, 1000)
        for action, info in zip(actions, infos, strict=True):
            keys.update(action.keys)
            directions[direction(action)] += 1
            events.update(k for k in ("broken", "placed") if info[k])
    assert set(MOVE_KEYS + HOTBAR_KEYS) <= set(keys), set(MOVE_KEYS + HOTBAR_KEYS) - set(keys)
    assert {(p, y) for p in (-1, 0, 1) for y in (-1, 0, 1)} <= set(directions)
    assert events["broken"] >= 3 and events["placed"] >= 3
    idle_share = directions[(0, 0)] / sum(directions.values())
    assert 0.3 < idle_share < 0.95  # a human does not move the mouse every tick, nor never


def test_scripted_player_moves_around():
    _, infos = play(5, "plains", 600)
    xs = [i["pose"]["x"] for i in infos]
    zs = [i["pose"]["z"] for i in infos]
    assert max(xs) - min(xs) + max(zs) - min(zs) > 15


def test_player_config_is_checked():
    with pytest.raises(ValueError, match="weights"):
        PlayerConfig(weights={"dance": 1.0})
    with pytest.raises(ValueError, match="min_ticks"):
        PlayerConfig(min_ticks=10, max_ticks=5)
    only_idle = ScriptedPlayer(0, PlayerConfig(weights={"idle": 1.0}))
    assert all(not only_idle.act(None).keys for _ in range(50))


def test_hold_mode_plays_score_actions_with_a_steady_turn():
    player = ScriptedPlayer(3, PlayerConfig(weights={"hold": 1.0}, hold_camera_deg=(2.0, 6.0)))
    specs = {(frozenset(keys), sign) for _, keys, sign in score_specs()}
    held, previous = set(), None
    for _ in range(8000):
        action = player.act(None)
        pitch, yaw = action.camera
        sign = (int(math.copysign(1, pitch)) if pitch else 0, int(math.copysign(1, yaw)) if yaw else 0)
        assert (frozenset(player.keys), sign) in specs
        held.add((frozenset(player.keys), sign))
        speeds = {abs(v) for v in (pitch, yaw) if v}
        assert len(speeds) <= 1 and all(2.0 <= v <= 6.0 for v in speeds)  # one speed on both axes
        assert action.keys == score_keys_at(player.keys, player.mode_tick)  # attack on ticks 8..15 of 16
        if player.mode_tick > 0:
            assert action.camera == previous.camera  # steady within a mode
        previous = action
    assert len(held) >= 60, len(held)
    assert PLAYER_PRESETS["controls"].weights["hold"] > 0 and "hold" not in PLAYER_PRESETS["default"].weights
    with pytest.raises(ValueError, match="hold_camera_deg"):
        PlayerConfig(hold_camera_deg=(3.0, 1.0))
