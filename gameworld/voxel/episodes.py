"""Voxel episodes: plan a scripted run without drawing, then replay it frame by frame to disk.

Planning first (physics only) gives every action and pose up front, so the frames can stream
straight into the video encoder; the replay checks each pose against the plan, which also
guards the game's determinism.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from gameworld.actions import Action
from gameworld.data import write_episode
from gameworld.voxel.players import PLAYER_PRESETS, ScriptedPlayer
from gameworld.voxel.world import VoxelConfig, VoxelWorld


def plan_scripted(world: VoxelWorld, player: ScriptedPlayer, frames: int) -> tuple[list[Action], list[dict]]:
    """Reset `world` and let `player` act for `frames - 1` ticks without rendering.

    Returns one action and one extra per frame: `actions[0]` is null (nothing precedes the first
    frame) and `extras[t] = {"pose": ...}` is the exact pose in frame t.
    """
    if frames < 1:
        raise ValueError(f"an episode needs at least one frame, got frames={frames}")
    world.reset()
    info = world.info()
    actions, extras = [Action.null()], [{"pose": info["pose"]}]
    for _ in range(frames - 1):
        action = player.act(info)
        info = world.advance(action)
        actions.append(action)
        extras.append({"pose": info["pose"]})
    return actions, extras


def replay(
    world: VoxelWorld, actions: Sequence[Action], poses: Sequence[dict] | None = None
) -> Iterator[np.ndarray]:
    """Frames f[0..T-1] of `actions` (a[0] is not applied), checking poses against `poses` if given."""
    yield world.reset()
    for t, action in enumerate(actions[1:], start=1):
        frame, info = world.step(action)
        if poses is not None and info["pose"] != poses[t]:
            raise RuntimeError(f"replay diverged from the plan at frame {t}: {info['pose']} != {poses[t]}")
        yield frame


def write_voxel_episode(
    stem: str | Path, *, seed: int, biome: str, frames: int, width: int, height: int,
    player_seed: int, hud: bool = True, lossless: bool = False, config: VoxelConfig | None = None,
    player: str = "default",
) -> Path:
    """Play one scripted episode and write it as a native episode (`<stem>.mp4/.jsonl/.json`).

    `player` names a `PLAYER_PRESETS` entry (how the scripted player chooses what to do).
    """
    if player not in PLAYER_PRESETS:
        raise ValueError(f"unknown player {player!r}; choose one of {sorted(PLAYER_PRESETS)}")
    world = VoxelWorld(seed=seed, biome=biome, width=width, height=height, hud=hud, config=config)
    actions, extras = plan_scripted(world, ScriptedPlayer(player_seed, PLAYER_PRESETS[player]), frames)
    meta = {
        "source": "voxel", "seed": seed, "biome": biome, "player": "ScriptedPlayer",
        "player_preset": player, "player_seed": player_seed, "hud": hud,
    }
    poses = [e["pose"] for e in extras]
    return write_episode(
        stem, replay(world, actions, poses), actions, fps=20, meta=meta, extras=extras, lossless=lossless
    )
