"""One jsonl line per frame: VPT's keyboard/mouse names and the native line layout.

A native line holds the action as gameworld reads it back (`keys`, `camera` in degrees), the
same action in VPT contractor fields (`keyboard.keys`, `mouse.dx/dy/buttons`) so VPT tooling can
read it, and any per-frame extras (such as the voxel game's exact `pose`):

    {"keys": ["attack", "forward"], "camera": [0.0, 1.5],
     "keyboard": {"keys": ["key.keyboard.w"]}, "mouse": {"dx": 10.0, "dy": 0.0, "buttons": [0]},
     "pose": {"x": 1.5, "y": 64.0, "z": -3.25, "yaw": 90.0, "pitch": 0.0}}

Line t holds a[t], the input that produced frame t (DESIGN.md's time convention), whereas line t
of a VPT contractor file is the input given after frame t: VPT tools read native actions one
frame late.
"""

from __future__ import annotations

import json

import numpy as np

from gameworld.actions import MAX_CAMERA_DEG_PER_FRAME, VPT_DEGREES_PER_MOUSE_UNIT, Action

# VPT contractor keyboard names -> gameworld key names (as VPT's own IDM script maps them).
VPT_KEYBOARD: dict[str, str] = {
    "key.keyboard.w": "forward",
    "key.keyboard.s": "back",
    "key.keyboard.a": "left",
    "key.keyboard.d": "right",
    "key.keyboard.space": "jump",
    "key.keyboard.left.shift": "sneak",
    "key.keyboard.left.control": "sprint",
    "key.keyboard.q": "drop",
    "key.keyboard.f": "swapHands",
    "key.keyboard.e": "inventory",
    **{f"key.keyboard.{i}": f"hotbar.{i}" for i in range(1, 10)},
}
# VPT mouse button numbers -> gameworld key names.
VPT_BUTTONS: dict[int, str] = {0: "attack", 1: "use", 2: "pickItem"}

KEY_TO_VPT_KEYBOARD = {key: name for name, key in VPT_KEYBOARD.items()}
KEY_TO_VPT_BUTTON = {key: button for button, key in VPT_BUTTONS.items()}
ACTION_FIELDS = ("keys", "camera", "keyboard", "mouse")


def to_json_value(value):
    """`json.dumps(default=...)`: numpy scalars and arrays become plain numbers and lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def action_to_line(action: Action, extras: dict | None = None) -> str:
    """The native jsonl line (no newline) for one frame's action plus its extras."""
    extras = extras or {}
    clash = sorted(set(extras) & set(ACTION_FIELDS))
    if clash:
        raise ValueError(f"per-frame extras may not use the action fields {clash}")
    dpitch, dyaw = action.camera
    line = {
        "keys": sorted(action.keys),
        "camera": [dpitch, dyaw],
        "keyboard": {"keys": sorted(KEY_TO_VPT_KEYBOARD[k] for k in action.keys if k in KEY_TO_VPT_KEYBOARD)},
        "mouse": {
            "dx": dyaw / VPT_DEGREES_PER_MOUSE_UNIT,
            "dy": dpitch / VPT_DEGREES_PER_MOUSE_UNIT,
            "buttons": sorted(KEY_TO_VPT_BUTTON[k] for k in action.keys if k in KEY_TO_VPT_BUTTON),
        },
        **extras,
    }
    return json.dumps(line, default=to_json_value)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def line_to_action(line: dict) -> tuple[Action, dict]:
    """A parsed native line -> (action, extras). Raises ValueError/TypeError on a malformed line."""
    if not isinstance(line, dict) or "keys" not in line or "camera" not in line:
        raise ValueError("a native line needs the fields 'keys' and 'camera'")
    keys, camera = line["keys"], line["camera"]
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ValueError(f"'keys' must be a list of key names, got {keys!r}")
    if not isinstance(camera, list) or len(camera) != 2 or not all(_is_number(c) for c in camera):
        raise ValueError(f"'camera' must be [dpitch, dyaw], got {camera!r}")
    action = Action(frozenset(keys), (camera[0], camera[1]))
    extras = {name: value for name, value in line.items() if name not in ACTION_FIELDS}
    return action, extras


def clean_camera(dpitch: float, dyaw: float) -> tuple[tuple[float, float], bool]:
    """((dpitch, dyaw), glitch): a turn beyond what `Action` allows is a recorder glitch, made (0, 0)."""
    if all(np.isfinite(v) and abs(v) <= MAX_CAMERA_DEG_PER_FRAME for v in (dpitch, dyaw)):
        return (float(dpitch), float(dyaw)), False
    return (0.0, 0.0), True
