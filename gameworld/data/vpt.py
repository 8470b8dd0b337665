"""VPT contractor recordings (`<name>.mp4` + `<name>.jsonl`, 20 Hz, 640x360) as gameworld episodes.

jsonl line i is the input the contractor gave after seeing frame i (VPT's own loader pairs
frame i with line i). gameworld's a[t] is the input that produced frame t, so a[0] is null,
a[t] is line t-1, and the last line (whose frame was never recorded) is dropped. Per line:

- `keyboard.keys` names map through `VPT_KEYBOARD`; keys gameworld has no name for (escape,
  chat, ...) are ignored, as VPT's loader ignores them.
- `mouse.buttons` 0/1/2 are attack/use/pickItem; `mouse.dx/dy` times 0.15 degrees per unit are
  the camera (dyaw, dpitch); turns beyond 180 degrees in one frame are recorder glitches, set to
  zero and counted in `meta["camera_glitches"]`.
- A change of the selected `hotbar` slot (the scroll wheel changes it without a key) adds
  `hotbar.N`, starting from slot 1 as VPT does.
- Stuck attack: some recordings begin with button 0 already held (line 0's `newButtons` is
  `[0]`); attack is dropped until a later line presses button 0 anew.
- `isGuiOpen` is a property of frame t (the GUI is on screen), kept as `extras[t]["gui_open"]`;
  the player's position, when the line has one, becomes `extras[t]["pose"]`.
"""

from __future__ import annotations

from pathlib import Path

from gameworld.actions import VPT_DEGREES_PER_MOUSE_UNIT, Action, ActionSpace
from gameworld.data.action_lines import VPT_BUTTONS, VPT_KEYBOARD, clean_camera
from gameworld.data.episode import Episode, read_jsonl
from gameworld.data.errors import EpisodeError
from gameworld.data.video import probe_video

VPT_FPS = 20
POSE_FIELDS = {"xpos": "x", "ypos": "y", "zpos": "z", "yaw": "yaw", "pitch": "pitch"}


class _Contractor:
    """The state VPT's conversion carries from line to line: a stuck attack button and the hotbar slot."""

    def __init__(self) -> None:
        self.attack_stuck = False
        self.hotbar = 0
        self.glitches = 0

    def action(self, line: dict, first: bool) -> Action:
        mouse, keyboard = line["mouse"], line["keyboard"]
        buttons = set(mouse.get("buttons", []))
        new_buttons = list(mouse.get("newButtons", []))
        if first:
            self.attack_stuck = new_buttons == [0]
        elif self.attack_stuck and 0 in new_buttons:
            self.attack_stuck = False
        if self.attack_stuck:
            buttons.discard(0)
        keys = {VPT_KEYBOARD[name] for name in keyboard.get("keys", []) if name in VPT_KEYBOARD}
        keys |= {VPT_BUTTONS[b] for b in buttons if b in VPT_BUTTONS}
        hotbar = line.get("hotbar", self.hotbar)
        if not isinstance(hotbar, int) or not 0 <= hotbar <= 8:
            raise ValueError(f"hotbar slot must be 0..8, got {hotbar!r}")
        if hotbar != self.hotbar:
            keys.add(f"hotbar.{hotbar + 1}")
            self.hotbar = hotbar
        camera, glitch = clean_camera(
            float(mouse["dy"]) * VPT_DEGREES_PER_MOUSE_UNIT, float(mouse["dx"]) * VPT_DEGREES_PER_MOUSE_UNIT
        )
        self.glitches += glitch
        return Action(frozenset(keys), camera)


def _frame_extras(line: dict) -> dict:
    extras = {"gui_open": bool(line.get("isGuiOpen", False))}
    if all(name in line for name in POSE_FIELDS):
        extras["pose"] = {ours: float(line[theirs]) for theirs, ours in POSE_FIELDS.items()}
    return extras


def read_vpt(video: str | Path, jsonl: str | Path) -> Episode:
    """Open a VPT contractor recording; the video must have exactly one frame per jsonl line."""
    video, jsonl = Path(video), Path(jsonl)
    contractor = _Contractor()
    recorded, extras = [], []
    for number, line in read_jsonl(jsonl):
        try:
            if not isinstance(line, dict):
                raise TypeError(f"expected a JSON object, got {type(line).__name__}")
            recorded.append(contractor.action(line, first=not recorded))
            extras.append(_frame_extras(line))
        except (KeyError, TypeError, ValueError) as err:
            raise EpisodeError(jsonl, f"not a VPT action line ({err!r})", line=number) from err
    if not recorded:
        raise EpisodeError(jsonl, "no action lines")
    info = probe_video(video)
    if info.frame_count != len(recorded):
        raise EpisodeError(jsonl, f"{len(recorded)} lines, but {video.name} has {info.frame_count} frames")
    actions = [Action.null(), *recorded[:-1]]
    meta = {
        "source": "vpt", "fps": info.fps or VPT_FPS, "width": info.width, "height": info.height,
        "frame_count": len(actions), "action_space": ActionSpace.minecraft().to_dict(),
        "camera_glitches": contractor.glitches,
    }
    return Episode(video, actions, meta["fps"], meta, extras)
