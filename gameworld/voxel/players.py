"""Scripted players: seeded human-like play, and the 76 GameWorld Score action clips.

`ScriptedPlayer(seed).act(info) -> Action` plays in short *modes* (walking, turning, looking
around, strafing, jumping, sneaking, mining, building, idling, switching the hotbar, and, for the
"controls" preset, holding a GameWorld Score action) with smooth, bell-shaped mouse moves, jumps
when walking into a step, and swims up in water. Over a few hundred ticks it presses every key the
game uses and turns the camera in every direction.

`gameworld_score_actions()` rebuilds the GameWorld Score benchmark clips (Matrix-Game's
`Bench76`): 65 frames each, keys and camera held for the whole clip, and `attack` only on the
frames whose index modulo 16 is 8..15. The camera moves 5 degrees per frame, as in the Bench76
jsonl files (`"camera": [dpitch, dyaw]`, e.g. `[-5, 5]` for up-right).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from gameworld.actions import Action

SCORE_FRAMES = 65
SCORE_CAMERA_DEG = 5.0
SCORE_KEYS: tuple[str, ...] = ("forward", "back", "left", "right", "jump", "attack")
# name -> (dpitch, dyaw) sign; VPT signs: positive pitch looks down, positive yaw turns right.
SCORE_CAMERA: dict[str, tuple[int, int]] = {
    "up": (-1, 0), "down": (1, 0), "l": (0, -1), "r": (0, 1),
    "ul": (-1, -1), "ur": (-1, 1), "dl": (1, -1), "dr": (1, 1),
}
SCORE_PAIRS: tuple[tuple[str, str], ...] = (
    ("forward", "attack"), ("forward", "jump"), ("forward", "left"), ("forward", "right"),
    ("back", "attack"), ("back", "jump"), ("back", "left"), ("back", "right"),
    ("left", "attack"), ("left", "jump"), ("right", "attack"), ("right", "jump"),
    ("jump", "attack"),
)


def score_keys_at(keys: tuple[str, ...] | set[str], tick: int) -> set[str]:
    """The keys of a held score action on its tick `tick`: `attack` is pressed on ticks 8..15 of 16."""
    return {k for k in keys if k != "attack" or 8 <= tick % 16 <= 15}


def score_specs() -> list[tuple[str, tuple[str, ...], tuple[int, int]]]:
    """(name, keys, camera direction sign) of the 76 GameWorld Score clips, in their order."""
    specs = [(key, (key,), (0, 0)) for key in SCORE_KEYS]
    specs += [(f"camera_{name}", (), sign) for name, sign in SCORE_CAMERA.items()]
    specs.append(("empty", (), (0, 0)))
    specs += [(f"{a}_{b}", (a, b), (0, 0)) for a, b in SCORE_PAIRS]
    specs += [
        (f"{key}_camera_{name}", (key,), sign) for key in SCORE_KEYS for name, sign in SCORE_CAMERA.items()
    ]
    return specs


def _score_clip(keys: tuple[str, ...], camera: tuple[float, float], frames: int) -> list[Action]:
    return [Action(frozenset(score_keys_at(keys, idx)), camera) for idx in range(frames)]


def gameworld_score_actions(
    frames: int = SCORE_FRAMES, camera_deg: float = SCORE_CAMERA_DEG
) -> list[tuple[str, list[Action]]]:
    """The 76 GameWorld Score clips as `(name, actions)`, named as Bench76's `test_<name>.jsonl`.

    6 single keys, 8 camera directions, `empty` (idle), 13 key pairs and 6 keys x 8 directions.
    """
    if frames < 1 or camera_deg <= 0:
        raise ValueError(f"need frames >= 1 and camera_deg > 0, got frames={frames}, camera_deg={camera_deg}")
    return [
        (name, _score_clip(keys, (p * camera_deg, y * camera_deg), frames))
        for name, keys, (p, y) in score_specs()
    ]


@dataclass(frozen=True)
class PlayerConfig:
    """How often each mode is chosen (relative weights) and how long it lasts (ticks)."""

    weights: dict[str, float] = field(default_factory=lambda: {
        "walk": 0.22, "turn": 0.10, "look": 0.14, "strafe": 0.09, "jump": 0.07, "sneak": 0.05,
        "mine": 0.10, "build": 0.09, "idle": 0.08, "hotbar": 0.08,
    })
    min_ticks: int = 10
    max_ticks: int = 80
    max_turn_deg_per_tick: float = 18.0
    hold_camera_deg: tuple[float, float] = (1.5, 8.0)  # "hold" mode: range of the steady turn per tick

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(_MODES)
        if unknown or not self.weights or min(self.weights.values()) < 0 or sum(self.weights.values()) <= 0:
            raise ValueError(f"PlayerConfig.weights must give non-negative weights to modes of {_MODES}")
        if not 1 <= self.min_ticks <= self.max_ticks:
            raise ValueError(
                f"PlayerConfig: need 1 <= min_ticks ({self.min_ticks}) <= max_ticks ({self.max_ticks})"
            )
        low, high = self.hold_camera_deg
        if not 0 < low <= high:
            raise ValueError(f"PlayerConfig: need 0 < hold_camera_deg[0] <= [1], got {self.hold_camera_deg}")


_MODES = ("walk", "turn", "look", "strafe", "jump", "sneak", "mine", "build", "idle", "hotbar", "hold")

# Named players for `datasets/generate.py --player`. "controls" holds GameWorld Score actions (keys and
# a steady camera turn, as the evaluation asks for them) half of the time and strafes more: data for
# the inverse dynamics model, whose rare classes the default player hardly shows.
PLAYER_PRESETS: dict[str, PlayerConfig] = {
    "default": PlayerConfig(),
    "controls": PlayerConfig(weights={
        "hold": 0.5, "walk": 0.08, "turn": 0.06, "look": 0.08, "strafe": 0.1, "jump": 0.04, "sneak": 0.02,
        "mine": 0.04, "build": 0.02, "idle": 0.04, "hotbar": 0.02,
    }),
}


class ScriptedPlayer:
    """Seeded, human-looking play for `VoxelWorld`: call `act(info)` once per tick.

    `info` is what the world returned for the last tick (or `world.info()` after `reset`); the
    player reads only `pose`, `on_ground`, `in_water` and `target` from it.
    """

    def __init__(self, seed: int = 0, config: PlayerConfig | None = None):
        self.config = config or PlayerConfig()
        self.rng = np.random.default_rng(seed)
        self.mode = "idle"
        self.left = 0
        self.keys: set[str] = set()
        self.mouse: deque[tuple[float, float]] = deque()
        self.last_pose: dict | None = None
        self.stuck = 0
        self.slot_order: list[int] = []
        self.mode_tick = 0  # ticks since the current mode started

    # -- mouse ----------------------------------------------------------------------------------
    def _plan_mouse(self, dpitch: float, dyaw: float, ticks: int | None = None) -> None:
        """Queue a smooth move of (dpitch, dyaw) degrees with a bell-shaped speed profile."""
        largest = max(abs(dpitch), abs(dyaw))
        if ticks is None:
            ticks = max(2, math.ceil(1.6 * largest / self.config.max_turn_deg_per_tick))
        weights = np.sin(np.pi * (np.arange(ticks) + 0.5) / ticks) ** 2
        weights /= weights.sum()
        self.mouse.extend((float(dpitch * w), float(dyaw * w)) for w in weights)

    def _random_glance(self, scale: float) -> None:
        """A look in a random direction; half of them along one of the 8 compass directions."""
        if self.rng.random() < 0.5:
            angle = self.rng.integers(0, 8) * np.pi / 4
        else:
            angle = self.rng.uniform(0, 2 * np.pi)
        size = scale * self.rng.uniform(0.3, 1.0)
        self._plan_mouse(size * math.sin(angle) * 0.6, size * math.cos(angle))

    # -- modes ----------------------------------------------------------------------------------
    def _next_slot_key(self) -> str:
        """Hotbar slots in a shuffled round, so every slot gets used within nine switches."""
        if not self.slot_order:
            self.slot_order = [int(n) for n in self.rng.permutation(np.arange(1, 10))]
        return f"hotbar.{self.slot_order.pop()}"

    def _start_mode(self, pitch: float) -> None:
        names = list(self.config.weights)
        p = np.array([self.config.weights[n] for n in names], dtype=np.float64)
        self.mode = names[int(self.rng.choice(len(names), p=p / p.sum()))]
        self.left = int(self.rng.integers(self.config.min_ticks, self.config.max_ticks + 1))
        self.keys = set()
        rng = self.rng
        if self.mode == "walk":
            self.keys = {"forward"} | ({"sprint"} if rng.random() < 0.4 else set())
            if abs(pitch) > 25:
                self._plan_mouse(-pitch + rng.uniform(-5, 10), rng.uniform(-20, 20))
        elif self.mode == "turn":
            self.keys = {"forward"} if rng.random() < 0.5 else set()
            self._plan_mouse(rng.uniform(-10, 10), rng.choice([-1, 1]) * rng.uniform(30, 180))
            self.left = len(self.mouse) + int(rng.integers(0, 10))
        elif self.mode == "look":
            for _ in range(int(rng.integers(2, 5))):
                self._random_glance(rng.choice([8.0, 25.0, 60.0]))
            self.left = len(self.mouse) + int(rng.integers(0, 15))
        elif self.mode == "strafe":
            self.keys = {str(rng.choice(["back", "left", "right"]))}
            if rng.random() < 0.4 and "back" not in self.keys:
                self.keys.add("forward")
        elif self.mode == "jump":
            self.keys = {"jump"} | ({"forward"} if rng.random() < 0.7 else set())
        elif self.mode == "sneak":
            self.keys = {"sneak", str(rng.choice(["forward", "back", "left", "right"]))}
        elif self.mode == "mine":
            self._plan_mouse(rng.uniform(30, 70) - pitch, rng.uniform(-30, 30))
            self.left = len(self.mouse) + int(rng.integers(20, 70))
        elif self.mode == "build":
            self.keys = {self._next_slot_key()}
            self._plan_mouse(rng.uniform(35, 65) - pitch, rng.uniform(-40, 40))
            self.left = len(self.mouse) + int(rng.integers(10, 40))
        elif self.mode == "hotbar":
            self.keys = {self._next_slot_key()}
            self.left = int(rng.integers(2, 8))
        elif self.mode == "hold":  # one GameWorld Score action: keys and a steady turn, held
            specs = score_specs()
            _, keys, (sign_pitch, sign_yaw) = specs[int(rng.integers(len(specs)))]
            degrees = rng.uniform(*self.config.hold_camera_deg)
            self.keys = set(keys)
            self.mouse.extend([(sign_pitch * degrees, sign_yaw * degrees)] * self.left)

    def _mode_keys(self, elapsed_mouse: bool) -> set[str]:
        """Keys for this tick of the current mode (some modes change keys as they go)."""
        keys = set(self.keys)
        if self.mode == "hold":
            return score_keys_at(keys, self.mode_tick)
        if self.mode in ("mine", "build") and elapsed_mouse:
            keys.add("attack" if self.mode == "mine" else "use")
            if self.mode == "build" and self.rng.random() < 0.15:
                keys.add("back")
        if self.mode in ("build", "hotbar") and elapsed_mouse:
            keys -= {k for k in keys if k.startswith("hotbar.")}  # a hotbar key is tapped, not held
        return keys

    def act(self, info: dict | None) -> Action:
        pose = (info or {}).get("pose") or {"x": 0.0, "y": 0.0, "z": 0.0, "yaw": 0.0, "pitch": 0.0}
        if self.left <= 0:
            self._start_mode(pose["pitch"])
            self.mode_tick, first_tick = 0, True
        else:
            self.mode_tick, first_tick = self.mode_tick + 1, False
        self.left -= 1
        keys = self._mode_keys(elapsed_mouse=not self.mouse and not first_tick)
        dpitch, dyaw = self.mouse.popleft() if self.mouse else (0.0, 0.0)
        if self.mode in ("walk", "strafe", "jump") and self.rng.random() < 0.35:
            dpitch += float(self.rng.normal(0.0, 0.6))  # gentle steering and hand jitter
            dyaw += float(self.rng.normal(0.0, 2.0))
        if self.mode == "idle" and self.rng.random() < 0.05:
            dpitch, dyaw = float(self.rng.normal(0, 0.7)), float(self.rng.normal(0, 1.0))
        keys |= self._obstacle_keys(info, pose, keys)
        self.last_pose = pose
        return Action(frozenset(keys), (float(np.clip(dpitch, -90, 90)), float(np.clip(dyaw, -90, 90))))

    def _obstacle_keys(self, info: dict | None, pose: dict, keys: set[str]) -> set[str]:
        """Jump when walking into a step, swim up in water, turn away when stuck for long."""
        if info is None:
            return set()
        if info.get("in_water"):
            return {"jump"}
        moving = keys & {"forward", "back", "left", "right"}
        if self.last_pose is None or not moving:
            self.stuck = 0
            return set()
        moved = math.hypot(pose["x"] - self.last_pose["x"], pose["z"] - self.last_pose["z"])
        self.stuck = self.stuck + 1 if moved < 0.03 else 0
        if self.stuck > 30 and not self.mouse:
            self._plan_mouse(0.0, float(self.rng.choice([-1, 1]) * self.rng.uniform(60, 150)))
            self.stuck = 0
        if self.stuck >= 2 and info.get("on_ground") and "sneak" not in keys:
            return {"jump"}
        return set()
