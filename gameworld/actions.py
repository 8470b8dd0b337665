"""The one action type of gameworld, and the spaces that turn actions into model inputs.

An `Action` is what a player does during one tick: the keys held and the camera turn in degrees
(VPT signs: positive pitch looks down, positive yaw turns right). An `ActionSpace` declares which
keys a game has and how the camera is encoded, and turns a list of actions into a `[T, A]` tensor:

    [ multi-hot keys (K) | camera / max_deg, clipped (2) | pitch bin one-hot (n) | yaw bin one-hot (n) ]

Camera bins follow VPT's mu-law quantiser: the value is clipped to `max_deg`, companded with
`mu`, and rounded onto `n_bins` evenly spaced levels (VPT: 11 bins, 10 degrees, mu 10;
MineWorld: 21 bins, 90 degrees, mu 11.49).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gameworld.atomic import write_text_atomic

MINECRAFT_KEYS: tuple[str, ...] = (
    "forward", "back", "left", "right", "jump", "sneak", "sprint", "attack", "use", "drop",
    "swapHands", "pickItem", "inventory",
    *(f"hotbar.{i}" for i in range(1, 10)),
)
# Pairs that cancel: when both are held, the space keeps neither (as the game's own movement does).
MINECRAFT_EXCLUSIVE_PAIRS: tuple[tuple[str, str], ...] = (
    ("forward", "back"), ("left", "right"), ("sprint", "sneak"), ("attack", "use"),
)
# The largest camera turn one frame may carry; anything beyond is a unit error upstream.
MAX_CAMERA_DEG_PER_FRAME = 180.0
VPT_DEGREES_PER_MOUSE_UNIT = 360.0 / 2400.0


@dataclass(frozen=True)
class Action:
    """Keys held and camera turn `(dpitch, dyaw)` in degrees during one tick."""

    keys: frozenset[str] = frozenset()
    camera: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if isinstance(self.keys, str):
            raise TypeError(f"Action.keys must be a set of key names, not the string {self.keys!r}")
        object.__setattr__(self, "keys", frozenset(self.keys))
        if len(self.camera) != 2:
            raise ValueError(f"Action.camera must be (dpitch, dyaw), got {self.camera!r}")
        pitch, yaw = (float(c) for c in self.camera)
        for name, value in (("dpitch", pitch), ("dyaw", yaw)):
            if not math.isfinite(value) or abs(value) > MAX_CAMERA_DEG_PER_FRAME:
                raise ValueError(
                    f"Action camera {name}={value} is outside +-{MAX_CAMERA_DEG_PER_FRAME} degrees per frame"
                )
        object.__setattr__(self, "camera", (pitch, yaw))

    @classmethod
    def null(cls) -> Action:
        return cls()

    @classmethod
    def of(cls, *keys: str, camera: tuple[float, float] = (0.0, 0.0)) -> Action:
        """`Action.of("forward", "jump", camera=(0, 5))`."""
        return cls(frozenset(keys), camera)

    @property
    def is_null(self) -> bool:
        return not self.keys and self.camera == (0.0, 0.0)

    def to_dict(self) -> dict:
        return {"keys": sorted(self.keys), "camera": [self.camera[0], self.camera[1]]}

    @classmethod
    def from_dict(cls, data: dict) -> Action:
        return cls(frozenset(data.get("keys", ())), tuple(data.get("camera", (0.0, 0.0))))


def wrap_degrees(angles: float | np.ndarray) -> float | np.ndarray:
    """Angles in degrees mapped to [-180, 180): a yaw, or a yaw difference the short way round."""
    return (angles + 180.0) % 360.0 - 180.0


def mu_law_bin(degrees: np.ndarray, max_deg: float, n_bins: int, mu: float) -> np.ndarray:
    """Camera degrees -> bin index in [0, n_bins), VPT's mu-law quantiser."""
    x = np.clip(np.asarray(degrees, dtype=np.float64), -max_deg, max_deg) / max_deg
    companded = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)  # [-1, 1]
    return np.rint((companded + 1.0) * (n_bins - 1) / 2.0).astype(np.int64)


def mu_law_center(bins: np.ndarray, max_deg: float, n_bins: int, mu: float) -> np.ndarray:
    """Bin index -> the camera degrees at the centre of that bin (inverse of `mu_law_bin`)."""
    companded = np.asarray(bins, dtype=np.float64) * 2.0 / (n_bins - 1) - 1.0
    x = np.sign(companded) * np.expm1(np.abs(companded) * np.log1p(mu)) / mu
    return x * max_deg


@dataclass(frozen=True)
class CameraEncoding:
    """How the camera enters the action vector: continuous value and mu-law bins."""

    max_deg: float = 10.0
    n_bins: int = 11
    mu: float = 10.0

    def __post_init__(self) -> None:
        if self.max_deg <= 0 or self.n_bins < 3 or self.n_bins % 2 == 0 or self.mu <= 0:
            raise ValueError(f"invalid camera encoding {self}: need max_deg > 0, odd n_bins >= 3, mu > 0")

    @property
    def dim(self) -> int:
        return 2 + 2 * self.n_bins


@dataclass(frozen=True)
class ActionSpace:
    """The keys of a game and its camera encoding; `encode` turns actions into `[T, A]` floats."""

    keys: tuple[str, ...]
    camera: CameraEncoding | None = field(default_factory=CameraEncoding)
    exclusive_pairs: tuple[tuple[str, str], ...] = ()
    name: str = "custom"

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple(self.keys))
        object.__setattr__(self, "exclusive_pairs", tuple(tuple(p) for p in self.exclusive_pairs))
        if len(set(self.keys)) != len(self.keys):
            raise ValueError(f"ActionSpace {self.name!r} lists a key twice: {self.keys}")
        for pair in self.exclusive_pairs:
            unknown = [k for k in pair if k not in self.keys]
            if len(pair) != 2 or unknown:
                raise ValueError(f"ActionSpace {self.name!r}: bad exclusive pair {pair} (unknown {unknown})")

    @classmethod
    def minecraft(cls, camera: CameraEncoding | None = None) -> ActionSpace:
        """VPT/MineRL keys, VPT camera bins (11 bins, 10 degrees, mu 10) unless given."""
        return cls(MINECRAFT_KEYS, camera or CameraEncoding(), MINECRAFT_EXCLUSIVE_PAIRS, "minecraft")

    @property
    def dim(self) -> int:
        return len(self.keys) + (self.camera.dim if self.camera else 0)

    def resolve(self, action: Action) -> Action:
        """Check the keys and drop both members of every exclusive pair held together."""
        unknown = action.keys - set(self.keys)
        if unknown:
            raise ValueError(
                f"unknown key name(s) {sorted(unknown)} for action space {self.name!r}; "
                f"known: {list(self.keys)}"
            )
        if self.camera is None and action.camera != (0.0, 0.0):
            raise ValueError(
                f"action space {self.name!r} has no camera, but the action turns it by {action.camera}"
            )
        keys = set(action.keys)
        for a, b in self.exclusive_pairs:
            if a in keys and b in keys:
                keys -= {a, b}
        return Action(frozenset(keys), action.camera)

    def encode(self, actions: Sequence[Action]) -> torch.Tensor:
        """`[T, A]` float32: multi-hot keys, then the camera as value and as bins."""
        out = np.zeros((len(actions), self.dim), dtype=np.float32)
        index = {k: i for i, k in enumerate(self.keys)}
        for t, action in enumerate(actions):
            for key in self.resolve(action).keys:
                out[t, index[key]] = 1.0
        if self.camera is not None and len(actions):
            cam = self.camera
            k = len(self.keys)
            degrees = np.array([a.camera for a in actions], dtype=np.float64)  # [T, 2]
            out[:, k : k + 2] = np.clip(degrees / cam.max_deg, -1.0, 1.0)
            bins = mu_law_bin(degrees, cam.max_deg, cam.n_bins, cam.mu)  # [T, 2]
            rows = np.arange(len(actions))
            out[rows, k + 2 + bins[:, 0]] = 1.0
            out[rows, k + 2 + cam.n_bins + bins[:, 1]] = 1.0
        return torch.from_numpy(out)

    def decode(
        self, encoded: torch.Tensor, threshold: float = 0.5, exact_camera: bool = False
    ) -> list[Action]:
        """`[T, A]` (or logits-like scores) -> actions; the camera is read from the bins, or with
        `exact_camera` from the continuous value (the degrees encoded, within +-max_deg)."""
        if encoded.ndim != 2 or encoded.shape[1] != self.dim:
            raise ValueError(f"expected an encoded tensor [T, {self.dim}], got {tuple(encoded.shape)}")
        values = encoded.detach().float().cpu().numpy()
        k = len(self.keys)
        actions = []
        for row in values:
            keys = frozenset(key for key, v in zip(self.keys, row[:k], strict=True) if v > threshold)
            camera = (0.0, 0.0)
            if self.camera is not None:
                cam = self.camera
                bin_scores = row[k + 2 :].reshape(2, cam.n_bins)  # [pitch/yaw, n_bins]
                if bin_scores.any() and not exact_camera:
                    degrees = mu_law_center(bin_scores.argmax(axis=1), cam.max_deg, cam.n_bins, cam.mu)
                else:  # asked for, or no bins given (a hand-made row): the continuous value
                    degrees = row[k : k + 2] * cam.max_deg
                camera = (float(degrees[0]), float(degrees[1]))
            actions.append(Action(keys, camera))
        return actions

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "keys": list(self.keys),
            "camera": None if self.camera is None else vars(self.camera).copy(),
            "exclusive_pairs": [list(p) for p in self.exclusive_pairs],
        }

    @classmethod
    def from_dict(cls, data: dict) -> ActionSpace:
        if not isinstance(data, dict):
            raise ValueError(f"not an action space description: a {type(data).__name__}, not a JSON object")
        try:
            camera = data.get("camera")
            return cls(
                keys=tuple(data["keys"]),
                camera=None if camera is None else CameraEncoding(**camera),
                exclusive_pairs=tuple(tuple(p) for p in data.get("exclusive_pairs", ())),
                name=data.get("name", "custom"),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"not an action space description: {err}") from err

    def save(self, path: str | Path) -> None:
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ActionSpace:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (json.JSONDecodeError, ValueError) as err:
            raise ValueError(f"{path}: {err}") from err

