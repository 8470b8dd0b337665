"""What a player's input looks like to a controllability score: key groups and camera directions.

GameWorld Score (Matrix-Game) scores keyboard control on forward/back and left/right as 3-class
problems (neither, one, the other), jump and attack as binary, and the mouse as 9 classes: no
move, or one of 8 directions. Here a camera axis counts as moving when it turns by more than
`DEAD_ZONE_DEG` degrees in the frame; the 9 classes are the 3 x 3 grid of (pitch, yaw) states:

    class = 3 * pitch_state + yaw_state    pitch: 0 none, 1 up, 2 down;  yaw: 0 none, 1 left, 2 right

so class 0 is "no move" and the other 8 are the directions (VPT signs: negative pitch looks up).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gameworld.actions import Action, ActionSpace, wrap_degrees

DEAD_ZONE_DEG = 1.0  # a camera axis turning less than this per frame counts as still
KEY_GROUPS: dict[str, tuple[str, ...]] = {  # 3-class groups: state 1 = first key, 2 = second key
    "move": ("forward", "back"),
    "strafe": ("left", "right"),
}
BINARY_KEYS: tuple[str, ...] = ("jump", "attack")
GROUPS: tuple[str, ...] = ("move", "strafe", "jump", "attack", "camera")
CAMERA_CLASS_NAMES: tuple[str, ...] = ("none", "left", "right", "up", "up-left", "up-right",
                                       "down", "down-left", "down-right")


def axis_state(degrees: np.ndarray | torch.Tensor, dead_zone: float = DEAD_ZONE_DEG):
    """Per value: 0 when |d| <= dead_zone, 1 when negative (up / left), 2 when positive."""
    if torch.is_tensor(degrees):
        return 2 * (degrees > dead_zone).long() + (degrees < -dead_zone).long()
    degrees = np.asarray(degrees)
    return 2 * (degrees > dead_zone).astype(np.int64) + (degrees < -dead_zone).astype(np.int64)


def camera_class(dpitch, dyaw, dead_zone: float = DEAD_ZONE_DEG):
    """The 9-class mouse label of camera turns in degrees (arrays or tensors of one shape)."""
    return 3 * axis_state(dpitch, dead_zone) + axis_state(dyaw, dead_zone)


@dataclass
class ControlLabels:
    """Per-frame labels of a clip, each `int64 [T]` (camera `float32 [T, 2]` in degrees)."""

    move: np.ndarray
    strafe: np.ndarray
    jump: np.ndarray
    attack: np.ndarray
    camera_deg: np.ndarray

    @property
    def camera(self) -> np.ndarray:
        return camera_class(self.camera_deg[:, 0], self.camera_deg[:, 1])

    def group(self, name: str) -> np.ndarray:
        if name not in GROUPS:
            raise ValueError(f"unknown control group {name!r}; known: {GROUPS}")
        return self.camera if name == "camera" else getattr(self, name)

    def __len__(self) -> int:
        return len(self.move)


def labels_from_keys(keys: np.ndarray, camera_deg: np.ndarray, key_names: Sequence[str]) -> ControlLabels:
    """Labels from a multi-hot key array `[T, K]` (resolved: no cancelling pairs) and degrees `[T, 2]`."""
    index = {k: i for i, k in enumerate(key_names)}
    missing = [k for k in (*sum(KEY_GROUPS.values(), ()), *BINARY_KEYS) if k not in index]
    if missing:
        raise ValueError(f"the action space lacks the scored key(s) {missing}")
    held = np.asarray(keys) > 0.5

    def three_way(first: str, second: str) -> np.ndarray:
        a, b = held[:, index[first]], held[:, index[second]]
        return np.where(a & ~b, 1, np.where(b & ~a, 2, 0)).astype(np.int64)

    groups = {name: three_way(*pair) for name, pair in KEY_GROUPS.items()}
    binary = {name: held[:, index[name]].astype(np.int64) for name in BINARY_KEYS}
    return ControlLabels(**groups, **binary, camera_deg=np.asarray(camera_deg, dtype=np.float32))


def labels_from_actions(actions: Sequence[Action], space: ActionSpace | None = None) -> ControlLabels:
    """Labels of a list of actions (resolved in `space`, default Minecraft's)."""
    space = space or ActionSpace.minecraft()
    resolved = [space.resolve(a) for a in actions]
    keys = np.array([[k in a.keys for k in space.keys] for a in resolved], dtype=np.float32)
    keys = keys.reshape(len(resolved), len(space.keys))
    camera = np.array([a.camera for a in resolved], dtype=np.float32).reshape(len(resolved), 2)
    return labels_from_keys(keys, camera, space.keys)


def labels_from_encoded(encoded: torch.Tensor | np.ndarray, space: ActionSpace) -> ControlLabels:
    """Labels of `space.encode(...)` rows `[T, A]`; the camera is read from its continuous value
    (turns beyond the space's `max_deg` are clipped there)."""
    values = np.asarray(encoded.detach().cpu() if torch.is_tensor(encoded) else encoded, dtype=np.float32)
    if values.ndim != 2 or values.shape[1] != space.dim or space.camera is None:
        raise ValueError(f"expected encoded actions [T, {space.dim}] of a space with a camera, "
                         f"got {values.shape}")
    k = len(space.keys)
    return labels_from_keys(values[:, :k], values[:, k : k + 2] * space.camera.max_deg, space.keys)


def turns_of_poses(poses: Sequence[dict]) -> np.ndarray:
    """The camera turn the game made each frame, float32 [T, 2] (dpitch, dyaw) in degrees, from the
    poses it reports (`pitch`, `yaw`; frame 0: no turn). It differs from the turn asked for where the
    pitch stops at +-90 degrees: a view held straight up does not move, whatever the mouse says."""
    angles = np.array([[pose["pitch"], pose["yaw"]] for pose in poses], dtype=np.float64).reshape(-1, 2)
    turns = np.zeros_like(angles)
    turns[1:] = np.diff(angles, axis=0)
    turns[1:, 1] = wrap_degrees(turns[1:, 1])
    return turns.astype(np.float32)


def recorded_poses(extras: list[dict]) -> list[dict] | None:
    """The pose of every frame where the episode recorded one for each (voxel episodes), else None."""
    if not extras or not all("pose" in extra for extra in extras):
        return None
    return [extra["pose"] for extra in extras]


def actions_as_made(actions: list[Action], extras: list[dict]) -> list[Action]:
    """The actions with each camera turn the one the recorded poses show, where every frame has a
    pose (voxel episodes); as they are otherwise. A player who holds "look up" at the top of the
    pitch turns no further, and an IDM taught "up" on such a still view learns to guess from the pose."""
    poses = recorded_poses(extras)
    if poses is None:
        return actions
    turns = turns_of_poses(poses)
    return [Action(action.keys, (float(p), float(y))) for action, (p, y) in zip(actions, turns, strict=True)]


def travel_of_poses(poses: Sequence[dict]) -> np.ndarray:
    """How far the player went each frame in its own frame of reference, float32 [T, 3] (forward,
    right, up) in blocks, from the positions and yaw the game reports (`x`, `y`, `z`, `yaw`; frame 0:
    nowhere). The yaw is the frame's own (the game turns the camera before it moves the player);
    forward at yaw 0 is +z and right is -x, as in Minecraft."""
    position = np.array([[pose["x"], pose["y"], pose["z"]] for pose in poses], dtype=np.float64)
    position = position.reshape(-1, 3)
    yaw = np.radians([pose["yaw"] for pose in poses])
    step = np.zeros_like(position)
    step[1:] = np.diff(position, axis=0)
    forward = -np.sin(yaw) * step[:, 0] + np.cos(yaw) * step[:, 2]
    right = -np.cos(yaw) * step[:, 0] - np.sin(yaw) * step[:, 2]
    return np.stack([forward, right, step[:, 1]], axis=1).astype(np.float32)


def join_transitions(clips: Sequence[ControlLabels]) -> ControlLabels:
    """The labels of frames 1.. of every clip (frame 0 has no action), joined into one."""
    fields = ("move", "strafe", "jump", "attack", "camera_deg")
    return ControlLabels(**{name: np.concatenate([getattr(c, name)[1:] for c in clips]) for name in fields})


def accuracy(predicted: np.ndarray, target: np.ndarray) -> float:
    """Share of equal entries (NaN for none)."""
    predicted, target = np.asarray(predicted), np.asarray(target)
    if predicted.shape != target.shape:
        raise ValueError(f"accuracy of {predicted.shape} against {target.shape}")
    return float((predicted == target).mean()) if target.size else float("nan")


def balanced_accuracy(predicted: np.ndarray, target: np.ndarray) -> float:
    """Mean over the classes present in `target` of the share of that class predicted right."""
    predicted, target = np.asarray(predicted), np.asarray(target)
    classes = np.unique(target)
    if not len(classes):
        return float("nan")
    return float(np.mean([(predicted[target == c] == c).mean() for c in classes]))


def class_recalls(predicted: np.ndarray, target: np.ndarray, names: Sequence[str]) -> dict[str, dict]:
    """Per class name: the share of its frames predicted right ("recall"; None where it has no frames)
    and its number of frames. `balanced_accuracy` is the mean of the recalls that are not None."""
    predicted, target = np.asarray(predicted), np.asarray(target)
    out = {}
    for index, name in enumerate(names):
        mask = target == index
        out[name] = {"recall": float((predicted[mask] == index).mean()) if mask.any() else None,
                     "frames": int(mask.sum())}
    return out


def camera_accuracy_by_margin(
    predicted: ControlLabels, target: ControlLabels, edges: Sequence[float] = (0.25, 0.5, 1.0)
) -> dict[str, dict]:
    """Camera-class accuracy by how near the true turn lies to the dead zone's edge.

    A frame's margin is min over both axes of | |degrees| - DEAD_ZONE_DEG |: a turn of 1.1 degrees
    and a still axis have 0.1 and 1.0, so 0.1. Near the edge the class turns on a fraction of a pixel
    (a degree is about one pixel of a 128x72 frame), so an IDM's misses gather there; bands split at
    `edges` ("0-0.25", ..., ">=1") give accuracy (None for no frames) and frames.
    """
    margin = np.abs(np.abs(np.asarray(target.camera_deg)) - DEAD_ZONE_DEG).min(axis=1)
    right = predicted.camera == target.camera
    bounds = [0.0, *edges, np.inf]
    out = {}
    for low, high in zip(bounds[:-1], bounds[1:], strict=True):
        name = f">={low:g}" if np.isinf(high) else f"{low:g}-{high:g}"
        band = (margin >= low) & (margin < high)
        out[name] = {"accuracy": float(right[band].mean()) if band.any() else None, "frames": int(band.sum())}
    return out


def group_accuracies(predicted: ControlLabels, target: ControlLabels, skip_first: bool = True) -> dict:
    """Per group: accuracy and balanced accuracy over the frames (frame 0 has no action: skipped)."""
    start = 1 if skip_first else 0
    out = {}
    for name in GROUPS:
        p, t = predicted.group(name)[start:], target.group(name)[start:]
        out[name] = {"accuracy": accuracy(p, t), "balanced": balanced_accuracy(p, t), "frames": int(len(t))}
    return out


def reading_scores(predicted: Sequence[ControlLabels], targets: Sequence[ControlLabels]) -> dict:
    """How an IDM read clips: per group, accuracy and balanced accuracy over every transition of
    every clip (`join_transitions`); the recall of every camera direction (`camera_directions`) and
    the camera's accuracy by the turn's distance from the dead zone's edge (`camera_by_margin`)."""
    predicted, targets = join_transitions(predicted), join_transitions(targets)
    scores = group_accuracies(predicted, targets, skip_first=False)
    scores["camera_directions"] = class_recalls(predicted.camera, targets.camera, CAMERA_CLASS_NAMES)
    scores["camera_by_margin"] = camera_accuracy_by_margin(predicted, targets)
    return scores
