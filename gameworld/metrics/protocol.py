"""The GameWorld Score protocol on the voxel game: which clips, from which starts, with which seeds.

`full`: the 76 GameWorld Score action clips (Matrix-Game's Bench76, `gameworld_score_actions`) x 8
biomes x 4 start positions = 2432 clips of 65 frames. `quick`: the 15 single-control clips (6 keys,
8 camera directions, idle) plus `forward_jump`, one start each, biomes in turn: 16 clips.

A start is a voxel world (`biome`, world seed `seed_base + 100 * biome_index + start`) after
`context` frames of seeded scripted play, so the model begins from moving context as in play.
The default `seed_base` (100000) lies far above the seeds `datasets/generate.py` uses by default
(`seed + i`), so the worlds are held out; another base (`eval.score --seed-base 100050`) plays the
same clips in other held-out worlds, to tell a setting's gain from the luck of these worlds. The
ground truth of a clip is the same world replaying the clip's actions. Every number is a function
of the protocol fields: reruns give the same clips.

`starts_from` (files: images, episodes or videos, e.g. real Minecraft in any format
`gameworld.data.open_episode` reads) plays the same clips from the user's frames instead: each
start is a file's first `context` frames (an image is one frame) with its actions where it has
them. `quick` gives the 16 clips to the starts in turn, `full` plays the 76 actions from every
start. No game can replay the actions there, so
there is no ground truth: metrics that need it are not computed, and the mouse is read against the
turns asked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from gameworld.actions import Action
from gameworld.starts import fit_frames, read_start
from gameworld.voxel import BIOMES, ScriptedPlayer, VoxelWorld, gameworld_score_actions
from gameworld.voxel.episodes import plan_scripted

QUICK_ACTIONS: tuple[str, ...] = (
    "forward",
    "back",
    "left",
    "right",
    "jump",
    "attack",
    "camera_up",
    "camera_down",
    "camera_l",
    "camera_r",
    "camera_ul",
    "camera_ur",
    "camera_dl",
    "camera_dr",
    "empty",
    "forward_jump",
)
PROTOCOLS = ("quick", "full")


@dataclass(frozen=True)
class ScoreClip:
    """One clip: `actions[0]` is null (it precedes the first clip frame), `actions[1:]` are scored."""

    name: str  # the Bench76 action name, e.g. "forward_camera_ul"
    scene: str  # the voxel biome, or the name of a user start's file
    start: int  # start position number within the biome, or the user start's index
    seed: int | None  # voxel world seed (None: a user start)
    actions: tuple[Action, ...]

    @property
    def key(self) -> str:
        return f"{self.scene}_{self.start}_{self.name}"


@dataclass(frozen=True)
class Protocol:
    name: str = "quick"
    starts_per_biome: int = 4  # full protocol
    frames: int = 65  # per clip, the start frame included
    context: int = 4  # frames of scripted play before the clip (the model's start context)
    seed_base: int = 100_000
    long_frames: int = 1000  # idle and walking rollouts
    width: int = 256
    height: int = 144
    starts_from: tuple[str, ...] = ()  # user start files instead of voxel worlds (no ground truth)

    def __post_init__(self) -> None:
        if self.name not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.name!r}; choose from {PROTOCOLS}")
        if self.frames < 2 or self.context < 1 or self.starts_per_biome < 1 or self.long_frames < 2:
            raise ValueError(
                f"protocol needs frames >= 2, context >= 1, starts >= 1, long_frames >= 2: {self}"
            )
        if self.seed_base < 0:
            raise ValueError(f"protocol seed_base must be >= 0, got {self.seed_base}")
        object.__setattr__(self, "starts_from", tuple(str(path) for path in self.starts_from))

    @property
    def has_ground_truth(self) -> bool:
        """True for voxel starts (the game replays the actions), False for user starts."""
        return not self.starts_from

    def to_dict(self) -> dict:
        return asdict(self)

    def world_seed(self, biome: str, start: int) -> int:
        return self.seed_base + 100 * BIOMES.index(biome) + start

    def clips(self) -> list[ScoreClip]:
        """The clips in a fixed order (full: action by action, as the official layout groups them)."""
        actions = dict(gameworld_score_actions(self.frames))
        if self.starts_from:
            starts = [(Path(path).stem, index) for index, path in enumerate(self.starts_from)]
        elif self.name == "full":
            starts = [(b, s) for b in BIOMES for s in range(self.starts_per_biome)]
        else:
            starts = [(biome, 0) for biome in BIOMES]
        if self.name == "full":
            chosen = [(name, scene, start) for name in actions for scene, start in starts]
        else:
            chosen = [(name, *starts[i % len(starts)]) for i, name in enumerate(QUICK_ACTIONS)]
        return [
            ScoreClip(
                name,
                scene,
                start,
                self.world_seed(scene, start) if self.has_ground_truth else None,
                (Action.null(), *actions[name][1:]),
            )
            for name, scene, start in chosen
        ]

    def user_start(self, index: int) -> tuple[np.ndarray, list[Action]]:
        """User start `index` (of `starts_from`): its context frames uint8 [K, H, W, 3] at the
        protocol's frame size and their actions (null where the file has none)."""
        frames, actions = _read_user_start(self.starts_from[index], self.context, self.width, self.height)
        return frames.copy(), list(actions)

    def start_world(self, biome: str, start: int) -> tuple[VoxelWorld, np.ndarray, list[Action]]:
        """The world at the start of a clip, its `context` frames uint8 [K, H, W, 3] and their actions."""
        seed = self.world_seed(biome, start)
        world = VoxelWorld(seed=seed, biome=biome, width=self.width, height=self.height)
        actions, _ = plan_scripted(world, ScriptedPlayer(seed), self.context)
        frames = [world.reset()]
        for action in actions[1:]:
            frames.append(world.step(action)[0])
        return world, np.stack(frames), actions

    def ground_truth(self, clip: ScoreClip) -> tuple[np.ndarray, np.ndarray, list[Action], list[dict]]:
        """(context frames [K, H, W, 3], clip frames [T, H, W, 3], context actions, clip poses).

        Clip frame 0 is the last context frame; frame t > 0 follows `clip.actions[t]`. Voxel starts only."""
        if not self.has_ground_truth:
            raise ValueError("a protocol started from user files has no ground truth")
        world, context, context_actions = self.start_world(clip.scene, clip.start)
        frames, poses = [context[-1]], [world.pose()]
        for action in clip.actions[1:]:
            frame, info = world.step(action)
            frames.append(frame)
            poses.append(info["pose"])
        return context, np.stack(frames), context_actions, poses


@lru_cache(maxsize=32)
def _read_user_start(path: str, count: int, width: int, height: int) -> tuple[np.ndarray, tuple[Action, ...]]:
    frames, actions = read_start(path, count)
    return fit_frames(frames, width, height), tuple(actions or [Action.null()] * len(frames))


def long_rollout_actions(kind: str, frames: int) -> list[Action]:
    """`idle`: no input; `walk`: forward with a slow right turn (1 degree per frame), jumping
    every 40 frames so that steps do not stop it."""
    if kind == "idle":
        return [Action.null()] * frames
    if kind != "walk":
        raise ValueError(f"unknown long rollout {kind!r}; choose idle or walk")
    return [
        Action.of("forward", *(("jump",) if t % 40 == 0 else ()), camera=(0.0, 1.0)) for t in range(frames)
    ]


def revisit_actions(kind: str) -> tuple[list[Action], int]:
    """Actions of a scene-revisit test and the frame that should look like frame 0 again.

    `turn`: 360 degrees in place at 10 degrees per frame (36 frames). `walk`: 20 frames forward,
    a half turn (18 frames), 20 frames forward back to the start, a half turn back: 76 frames."""
    if kind == "turn":
        actions = [Action.null()] + [Action.of(camera=(0.0, 10.0))] * 36
    elif kind == "walk":
        half_turn = [Action.of(camera=(0.0, 10.0))] * 18
        actions = [Action.null()] + ([Action.of("forward")] * 20 + half_turn) * 2
    else:
        raise ValueError(f"unknown revisit test {kind!r}; choose turn or walk")
    return actions, len(actions) - 1
