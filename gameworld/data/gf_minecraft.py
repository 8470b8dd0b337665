"""GF-Minecraft (GameFactory) clips: `<root>/video/<name>.mp4` + `<root>/metadata/<name>.json`.

The metadata holds `actions`, a JSON object from frame number (`"0"`, `"1"`, ...) to
`{"ws", "ad", "scs", "pitch_delta", "yaw_delta", "pos"}`: `ws` 0/1/2 = none/forward/back,
`ad` 0/1/2 = none/left/right, `scs` 0/1/2/3 = none/jump/sneak/sprint, and the camera turn in
units of 15 degrees (positive pitch looks down, positive yaw turns right, as VPT). Action `i`
is paired with frame `i`, as GameFactory trains on them; it becomes a[i] (a[0] is set to null,
as nothing precedes frame 0), and `pos` becomes `extras[i]["pose"]`.
"""

from __future__ import annotations

from pathlib import Path

from gameworld.actions import Action, ActionSpace
from gameworld.data.action_lines import clean_camera
from gameworld.data.episode import Episode, read_json
from gameworld.data.errors import EpisodeError
from gameworld.data.video import probe_video

GF_DEGREES_PER_UNIT = 15.0
GF_WS = {0: (), 1: ("forward",), 2: ("back",)}
GF_AD = {0: (), 1: ("left",), 2: ("right",)}
GF_SCS = {0: (), 1: ("jump",), 2: ("sneak",), 3: ("sprint",)}


def gf_paths(path: str | Path) -> tuple[Path, Path]:
    """(video, metadata) of a clip named by either file."""
    path = Path(path)
    root, name = path.parent.parent, path.stem
    return root / "video" / f"{name}.mp4", root / "metadata" / f"{name}.json"


def _choice(table: dict, step: dict, name: str) -> tuple[str, ...]:
    value = step.get(name, 0)
    if value not in table or isinstance(value, bool):
        raise ValueError(f"{name} must be one of {sorted(table)}, got {value!r}")
    return table[value]


def _convert(step: dict) -> tuple[Action, dict, bool]:
    keys = _choice(GF_WS, step, "ws") + _choice(GF_AD, step, "ad") + _choice(GF_SCS, step, "scs")
    camera, glitch = clean_camera(
        float(step.get("pitch_delta", 0.0)) * GF_DEGREES_PER_UNIT,
        float(step.get("yaw_delta", 0.0)) * GF_DEGREES_PER_UNIT,
    )
    extras = {}
    if "pos" in step:
        x, y, z = (float(v) for v in step["pos"])
        extras["pose"] = {"x": x, "y": y, "z": z}
    return Action(frozenset(keys), camera), extras, glitch


def read_gf_minecraft(path: str | Path) -> Episode:
    """Open a GF-Minecraft clip by its video or metadata path."""
    video, metadata = gf_paths(path)
    data = read_json(metadata)
    steps = data.get("actions")
    if not isinstance(steps, dict) or not steps:
        raise EpisodeError(metadata, "no 'actions' object of per-frame actions")
    actions, extras, glitches = [], [], 0
    for i in range(len(steps)):
        if str(i) not in steps:
            raise EpisodeError(metadata, f"actions has {len(steps)} entries but no entry \"{i}\"")
        try:
            action, extra, glitch = _convert(steps[str(i)])
        except (TypeError, ValueError, AttributeError) as err:
            raise EpisodeError(metadata, f"action \"{i}\": {err}") from err
        actions.append(action)
        extras.append(extra)
        glitches += glitch
    actions[0] = Action.null()
    info = probe_video(video)
    if info.frame_count != len(actions):
        raise EpisodeError(metadata, f"{len(actions)} actions but {video.name} has {info.frame_count} frames")
    meta = {
        "source": "gf-minecraft", "fps": info.fps, "width": info.width, "height": info.height,
        "frame_count": len(actions), "action_space": ActionSpace.minecraft().to_dict(),
        "camera_glitches": glitches, "source_meta": {k: v for k, v in data.items() if k != "actions"},
    }
    return Episode(video, actions, info.fps, meta, extras)
