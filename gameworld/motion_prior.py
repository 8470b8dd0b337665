"""A motion prior: how far the view moves under an input, fitted on recorded episodes.

The world model finishes a frame well when sampling starts from the last frame already moved the
right way, but from pure noise it draws a still view (`eval.motion_probe`). The prior supplies
that first move: a linear map from the action (keys held, camera turn in degrees) to the view's
zoom and pan of the next frame, in `ego_motion`'s terms,

    motion = features(action) @ weights          features: [multi-hot keys | dpitch, dyaw]

fitted by robust least squares (Huber) on the motion that `ego_motion` reads from the episodes'
own frames. It has no intercept, so the null action stands still. It knows nothing of depth:
walking zooms and strafing pans by the typical amount of the training worlds, and the model
redraws the rest (`EngineSettings.motion_prior`). It knows two things of the camera: its pitch
stops at +-`pitch_limit` degrees (straight up and down in Minecraft), so `held` turns no further, and
a turn sideways spins a view that looks up or down about its centre (`held` adds the roll).

Stored as `motion_prior.json` in a model directory; `python -m training.fit_motion_prior` writes it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gameworld.actions import Action, ActionSpace
from gameworld.atomic import write_text_atomic
from gameworld.metrics.motion import COMPONENTS, ego_motion, motion_parts
from gameworld.modeldir import resolve_model_dir

PRIOR_NAME = "motion_prior.json"
CAMERA_FEATURES = ("dpitch", "dyaw")  # degrees per frame
CHUNK_FRAMES = 256  # frames read and measured at once (a long recording need not fit in memory)
HUBER_DELTA = 1.5  # residuals beyond this many robust standard deviations are down-weighted
STILL_PX = 0.5  # a motion that moves no pixel further than this leaves the view still
RIDGE = 50.0  # frames of no motion added per feature: a key pressed on a few frames gets no say


@dataclass(frozen=True)
class MotionPrior:
    """`weights[i][j]`: the motion component `COMPONENTS[j]` one unit of `features[i]` adds per frame."""

    features: tuple[str, ...]
    weights: tuple[tuple[float, ...], ...]
    transitions: int = 0  # frame pairs the fit read
    pitch_limit: float = 90.0  # degrees: the camera looks no further up or down

    def __post_init__(self) -> None:
        rows_fit = all(len(row) == len(COMPONENTS) for row in self.weights)
        if len(self.weights) != len(self.features) or not rows_fit:
            raise ValueError(
                f"motion prior: need one row of {len(COMPONENTS)} weights per feature, got "
                f"{len(self.weights)} rows for {len(self.features)} features"
            )
        if not all(np.isfinite(w) for row in self.weights for w in row):
            raise ValueError("motion prior: the weights must be finite numbers")
        if not 0 < self.pitch_limit <= 180:
            raise ValueError(f"motion prior: pitch_limit must be in (0, 180] degrees, got {self.pitch_limit}")

    def predict(self, actions: Sequence[Action]) -> np.ndarray:
        """Actions -> float32 [T, 3]: the expected (zoom, pan_x, pan_y) of each one's frame."""
        return (action_features(actions, self.features) @ np.asarray(self.weights)).astype(np.float32)

    def pitch_turn(self, pitch: float, dpitch: float) -> float:
        """The part of a pitch turn `dpitch` (degrees) the camera makes from `pitch`: all of it, or
        what is left to +-`pitch_limit`."""
        if abs(pitch + dpitch) <= self.pitch_limit:
            return dpitch
        return float(np.clip(pitch + dpitch, -self.pitch_limit, self.pitch_limit)) - pitch

    def pitch_after(self, pitch: float, actions: Sequence[Action]) -> float:
        """The camera's pitch (degrees) after `actions` from `pitch`, stopped at +-`pitch_limit`."""
        for action in actions:
            pitch = float(np.clip(pitch + action.camera[0], -self.pitch_limit, self.pitch_limit))
        return pitch

    def held(self, action: Action, count: int, pitch: float = 0.0) -> np.ndarray:
        """float32 [count, 4] (zoom, pan_x, pan_y, roll, as `apply_motion` takes it): the motion of
        each of `count` frames of `action` held from a view at `pitch` degrees, whose pitch stops at
        +-`pitch_limit`.

        A turn sideways is a turn about the world's vertical, which a pitched camera sees in part as
        a pan (cos pitch of it) and in part as a roll about the view's centre (sin pitch): looking
        straight down or up, turning spins the picture and pans nothing."""
        limit = self.pitch_limit
        dpitch, dyaw = action.camera
        pitches = np.clip(pitch + dpitch * np.arange(count + 1), -limit, limit)  # [count + 1]
        middle = np.radians((pitches[:-1] + pitches[1:]) / 2)  # [count]: the pitch of each turn
        frames = [
            Action(action.keys, (float(turn), float(dyaw * np.cos(at))))
            for turn, at in zip(np.diff(pitches), middle, strict=True)
        ]
        roll = -dyaw * np.sin(middle)  # looking down (pitch > 0), a right turn spins it anticlockwise
        return np.column_stack([self.predict(frames), roll]).astype(np.float32)

    @classmethod
    def fit(
        cls,
        motion: np.ndarray,
        actions: Sequence[Action],
        space: ActionSpace,
        ridge: float = RIDGE,
        iterations: int = 20,
    ) -> MotionPrior:
        """Fit on `motion` [N, 3] (`ego_motion` of N frame transitions) and the N actions that made them."""
        motion = np.asarray(motion, np.float64)
        if motion.ndim != 2 or motion.shape[1] != len(COMPONENTS) or len(motion) != len(actions):
            raise ValueError(
                f"motion prior: need motion [N, 3] for N actions, got {motion.shape} and {len(actions)}"
            )
        names = feature_names(space)
        x = action_features(actions, names)  # [N, F]
        used = np.abs(x).sum(0) > 0
        if not used.any():
            raise ValueError("motion prior: no action in the episodes presses a key or turns the camera")
        weights = np.zeros((len(names), len(COMPONENTS)))
        for j in range(len(COMPONENTS)):
            weights[used, j] = _huber_fit(x[:, used], motion[:, j], ridge, iterations)
        return cls(names, tuple(tuple(float(w) for w in row) for row in weights), len(motion))

    def to_json(self) -> str:
        return json.dumps({"components": list(COMPONENTS), "features": list(self.features),
                           "weights": [list(row) for row in self.weights], "transitions": self.transitions,
                           "pitch_limit": self.pitch_limit}, indent=2) + "\n"

    def save(self, path: str | Path) -> Path:
        """Write JSON atomically; `path` is the file or a model directory."""
        path = Path(path)
        target = path / PRIOR_NAME if path.is_dir() else path
        write_text_atomic(target, self.to_json())
        return target

    @classmethod
    def load(cls, path: str | Path) -> MotionPrior:
        """Read `motion_prior.json` (the file, or a model directory holding it)."""
        path = Path(path)
        path = path / PRIOR_NAME if path.is_dir() else path
        try:
            data = json.loads(path.read_text())
            if data.get("components") != list(COMPONENTS):
                raise ValueError(f"components must be {list(COMPONENTS)}, got {data.get('components')}")
            weights = tuple(tuple(float(w) for w in row) for row in data["weights"])
            return cls(tuple(data["features"]), weights, int(data.get("transitions", 0)),
                       float(data.get("pitch_limit", 90.0)))
        except FileNotFoundError:
            raise FileNotFoundError(
                f"{path}: no motion prior (python -m training.fit_motion_prior writes one)"
            ) from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: not a valid motion prior: {err}") from None


def largest_shift(motion: np.ndarray, width: int, height: int) -> float:
    """How far (pixels) `motion` (zoom, pan_x, pan_y[, roll], as `apply_motion` takes it) moves the
    pixel it moves furthest: a corner."""
    zoom, pan_x, pan_y, spin = motion_parts(motion)
    corners = np.array([[x, y] for x in (-width / 2, width / 2) for y in (-height / 2, height / 2)])  # [4, 2]
    moved = (1 + zoom) * corners @ spin + [pan_x * width, pan_y * height]
    return float(np.linalg.norm(moved - corners, axis=1).max())


def moves_view(motion: np.ndarray, width: int, height: int) -> bool:
    """Whether `motion` moves some pixel of a width x height view by `STILL_PX` or more (else the view
    holds still: the engine draws such a frame from its rest frame or pure noise, the prior alone
    leaves it as it is)."""
    return bool(largest_shift(motion, width, height) >= STILL_PX)


def find_motion_prior(model_dir: str | Path) -> MotionPrior | None:
    """The motion prior of a model directory (or a shipped model's name), None if it has none."""
    path = resolve_model_dir(model_dir) / PRIOR_NAME
    return MotionPrior.load(path) if path.is_file() else None


def feature_names(space: ActionSpace) -> tuple[str, ...]:
    """The keys of `space`, then the camera turn if it has one."""
    return tuple(space.keys) + (CAMERA_FEATURES if space.camera is not None else ())


def action_features(actions: Sequence[Action], names: Sequence[str]) -> np.ndarray:
    """float64 [T, F]: 1 for each named key held, the camera turn in degrees for dpitch / dyaw."""
    out = np.zeros((len(actions), len(names)))
    column = {name: i for i, name in enumerate(names)}
    for t, action in enumerate(actions):
        for key in action.keys:
            if key in column:
                out[t, column[key]] = 1.0
        for name, degrees in zip(CAMERA_FEATURES, action.camera, strict=True):
            if name in column:
                out[t, column[name]] = degrees
    return out


def _huber_fit(x: np.ndarray, y: np.ndarray, ridge: float, iterations: int) -> np.ndarray:
    """Weights w minimising the Huber loss of x @ w - y, by iteratively reweighted least squares.
    The motion read from a frame pair is sometimes far off (a view of sky only, a leap the fit did
    not follow); plain least squares lets those few pull every weight toward zero. A small ridge
    keeps keys that hardly occur (and so hardly say how they move the view) near zero."""
    sample_weight = np.ones(len(y))
    w = np.zeros(x.shape[1])
    for _ in range(iterations):
        weighted = x * sample_weight[:, None]
        w = np.linalg.solve(weighted.T @ x + ridge * np.eye(x.shape[1]), weighted.T @ y)
        residual = y - x @ w
        scale = 1.4826 * np.median(np.abs(residual)) + 1e-9  # robust standard deviation
        sample_weight = np.minimum(1.0, HUBER_DELTA * scale / np.maximum(np.abs(residual), 1e-12))
    return w


def fit_on_episodes(
    episodes: Iterable, space: ActionSpace, ridge: float = RIDGE, progress: bool = True
) -> MotionPrior:
    """Fit on `Episode`s (frames and the action that made each): every transition of every episode."""
    motion, actions = [], []
    for episode in tqdm(list(episodes), desc="motion", unit="episode", disable=not progress):
        episode_motion = list(_episode_motion(episode))  # [n, 3] chunks
        if episode_motion:
            motion += episode_motion
            count = sum(len(part) for part in episode_motion)
            actions.extend(space.resolve(a) for a in episode.actions[1 : 1 + count])
    if not motion:
        raise ValueError("motion prior: no episode has two frames")
    return MotionPrior.fit(np.concatenate(motion), actions, space, ridge)


def _episode_motion(episode) -> Iterable[np.ndarray]:
    """`ego_motion` of an episode's frames, [n, 3] per chunk of `CHUNK_FRAMES` transitions."""
    chunk: list[np.ndarray] = []
    for frame in episode.frames():
        chunk.append(frame)
        if len(chunk) == CHUNK_FRAMES + 1:
            yield ego_motion(np.stack(chunk))
            chunk = chunk[-1:]  # the next chunk starts where this one ended
    if len(chunk) >= 2:
        yield ego_motion(np.stack(chunk))


def add_motion_prior_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """`--motion-prior LEVEL|off` and `--still-level LEVEL|off` of the command lines that drive a
    `WorldEngine`."""
    parser.add_argument(
        "--motion-prior", type=_prior_level, metavar="LEVEL|off",
        help="start each moving frame from the last one moved by the model's motion prior, noised to "
             "LEVEL in (0, 1); off: from pure noise (default: the model's own setting)",
    )
    parser.add_argument(
        "--still-level", type=_prior_level, metavar="LEVEL|off",
        help="with the motion prior: start each frame whose input holds the view still from the rest "
             "frame (the newest frame an input made), noised to LEVEL in (0, 1); off: from pure noise "
             "(default: the model's own setting)",
    )


def motion_prior_settings(args: argparse.Namespace) -> dict:
    """The engine settings that parsed `--motion-prior` and `--still-level` ask for (none given: {})."""
    given = {"motion_prior": args.motion_prior, "still_level": args.still_level}
    return {name: None if value == "off" else value for name, value in given.items() if value is not None}


def _prior_level(text: str) -> float | str:
    if text == "off":
        return text
    try:
        level = float(text)
    except ValueError:
        level = -1.0
    if not 0.0 < level < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a noise level in (0, 1) or off")
    return level
