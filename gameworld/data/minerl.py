"""MineRL v0 recordings: a directory with `recording.mp4`, `rendered.npz` and `metadata.json`.

`rendered.npz` holds one row per step in `action$<name>` arrays (`action$camera` is
`[N, 2]` (dpitch, dyaw) in degrees, VPT signs). There are N steps and N + 1 states, and the
states are the last N + 1 frames of the video (earlier frames precede the experiment), so
f[0..N] are those frames, a[0] is null and a[t] is row t-1. `action$place` other than "none"
becomes `use`; crafting and equipping have no gameworld key and are dropped. The npz is read
with `allow_pickle=False`: an action array stored as Python objects is skipped and listed in
`meta["skipped_arrays"]`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from gameworld.actions import Action, ActionSpace
from gameworld.data.action_lines import clean_camera
from gameworld.data.episode import Episode
from gameworld.data.errors import EpisodeError
from gameworld.data.video import probe_video

MINERL_FPS = 20
MINERL_BINARY_KEYS = ("forward", "back", "left", "right", "jump", "sneak", "sprint", "attack")


def _load_actions(npz: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    arrays, skipped = {}, []
    try:
        with np.load(npz, allow_pickle=False) as data:
            for name in data.files:
                if not name.startswith("action$"):
                    continue
                try:
                    arrays[name.removeprefix("action$")] = data[name]
                except ValueError:  # object arrays need pickle, which we never load
                    skipped.append(name)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise EpisodeError(npz, f"cannot read the npz archive ({err})") from err
    return arrays, skipped


def _steps(npz: Path, arrays: dict[str, np.ndarray]) -> int:
    if "camera" not in arrays:
        raise EpisodeError(npz, "no action$camera array")
    n = len(arrays["camera"])
    if arrays["camera"].shape != (n, 2):
        raise EpisodeError(npz, f"action$camera must be [N, 2], got {arrays['camera'].shape}")
    for name, values in arrays.items():
        if len(values) != n:
            raise EpisodeError(npz, f"action${name} has {len(values)} rows, action$camera {n}")
    return n


def read_minerl_v0(directory: str | Path) -> Episode:
    """Open a MineRL v0 recording directory."""
    directory = Path(directory)
    video, npz = directory / "recording.mp4", directory / "rendered.npz"
    arrays, skipped = _load_actions(npz)
    steps = _steps(npz, arrays)
    actions, glitches = [Action.null()], 0
    for t in range(steps):
        keys = {key for key in MINERL_BINARY_KEYS if key in arrays and arrays[key][t]}
        if "place" in arrays and str(arrays["place"][t]) not in ("none", "0"):
            keys.add("use")
        camera, glitch = clean_camera(float(arrays["camera"][t, 0]), float(arrays["camera"][t, 1]))
        glitches += glitch
        actions.append(Action(frozenset(keys), camera))
    info = probe_video(video)
    offset = info.frame_count - len(actions)
    if offset < 0:
        raise EpisodeError(video, f"{info.frame_count} frames; {npz.name} needs {len(actions)} states")
    meta = {
        "source": "minerl-v0", "fps": info.fps or MINERL_FPS, "width": info.width, "height": info.height,
        "frame_count": len(actions), "action_space": ActionSpace.minecraft().to_dict(),
        "camera_glitches": glitches, "skipped_arrays": skipped, "leading_frames": offset,
    }
    return Episode(video, actions, meta["fps"], meta, frame_offset=offset)
