"""What the browser runs for the web demo: keyboard, mouse-drag and touch-pad capture, and styling.

The page keeps the input held since the last tick (keys held, keys tapped and already released,
camera turned by the arrow keys or by dragging the frame) and hands it to each tick of the game
timer as an `Action.to_dict()` JSON string, so a key pressed between two ticks is never lost.
"""

from __future__ import annotations

import json

from gameworld.ui.input import HOTBAR_SLOTS

TURN_DEG_PER_TICK = 3.0  # an arrow key (or pad arrow) held turns the camera this much per frame
DRAG_DEG_PER_PIXEL = 0.3  # dragging the frame by one screen pixel turns the camera this much

# Browser key codes -> action key names. Sprint is R: Ctrl+W would close the browser tab.
WEB_KEYS: dict[str, str] = {
    "KeyW": "forward", "KeyS": "back", "KeyA": "left", "KeyD": "right", "Space": "jump",
    "ShiftLeft": "sneak", "ShiftRight": "sneak", "KeyR": "sprint", "KeyQ": "drop", "KeyE": "inventory",
    "KeyF": "swapHands", **{f"Digit{n}": f"hotbar.{n}" for n in range(1, HOTBAR_SLOTS + 1)},
}
# Arrow key codes -> (dpitch, dyaw) signs (VPT: positive pitch looks down, positive yaw turns right).
WEB_TURNS: dict[str, tuple[int, int]] = {
    "ArrowUp": (-1, 0), "ArrowDown": (1, 0), "ArrowLeft": (0, -1), "ArrowRight": (0, 1),
}

INPUT_JS = """
() => {
  if (window.gameworldInput) return;
  const {KEYS, TURNS, TURN_DEG, DRAG_DEG} = __CONFIG__;
  const held = new Set(), tapped = new Set(), turning = new Set();
  let dragPitch = 0, dragYaw = 0, drag = null;
  const press = (name) => { held.add(name); tapped.add(name); };
  const typing = (e) => e.target instanceof Element && e.target.closest("input, textarea, select");
  document.addEventListener("keydown", (e) => {
    if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
    if (KEYS[e.code]) press(KEYS[e.code]);
    else if (TURNS[e.code]) turning.add(e.code);
    else return;
    e.preventDefault();  // no page scrolling, and space does not click a focused button
  });
  document.addEventListener("keyup", (e) => {
    if (KEYS[e.code]) held.delete(KEYS[e.code]);
    turning.delete(e.code);
  });
  window.addEventListener("blur", () => { held.clear(); turning.clear(); drag = null; });
  const onFrame = (e) => e.target instanceof Element && e.target.closest("#gw-frame");
  const padOf = (e) => e.target instanceof Element && e.target.closest("[data-gw-key], [data-gw-turn]");
  const unpress = (pad) => { held.delete(pad.dataset.gwKey); turning.delete(pad.dataset.gwTurn); };
  document.addEventListener("contextmenu", (e) => { if (onFrame(e)) e.preventDefault(); });
  document.addEventListener("pointerdown", (e) => {
    const pad = padOf(e);
    if (pad) {
      if (pad.dataset.gwKey) press(pad.dataset.gwKey); else turning.add(pad.dataset.gwTurn);
      e.preventDefault();
    } else if (onFrame(e)) {
      drag = {x: e.clientX, y: e.clientY, moved: 0, button: e.button};
      e.preventDefault();
    }
  });
  document.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    dragYaw += dx * DRAG_DEG; dragPitch += dy * DRAG_DEG;
    drag.moved += Math.abs(dx) + Math.abs(dy); drag.x = e.clientX; drag.y = e.clientY;
  });
  for (const type of ["pointerup", "pointercancel"]) document.addEventListener(type, (e) => {
    const pad = padOf(e);
    if (pad) unpress(pad);
    if (drag && type === "pointerup" && drag.moved < 4) tapped.add(drag.button === 2 ? "use" : "attack");
    drag = null;
  });
  document.addEventListener("pointerout", (e) => { const pad = padOf(e); if (pad) unpress(pad); });
  const clamp = (v) => Math.max(-180, Math.min(180, v));
  window.gameworldInput = {
    take() {
      let pitch = dragPitch, yaw = dragYaw;
      for (const code of turning) { pitch += TURNS[code][0] * TURN_DEG; yaw += TURNS[code][1] * TURN_DEG; }
      dragPitch = dragYaw = 0;
      const keys = [...new Set([...held, ...tapped])].sort();
      tapped.clear();
      return JSON.stringify({keys: keys, camera: [clamp(pitch), clamp(yaw)]});
    },
  };
}
""".replace("__CONFIG__", json.dumps({
    "KEYS": WEB_KEYS, "TURNS": WEB_TURNS, "TURN_DEG": TURN_DEG_PER_TICK, "DRAG_DEG": DRAG_DEG_PER_PIXEL,
}))

# The tick's `js` replaces the (hidden) input box's value with the input gathered since the last tick.
TAKE_INPUT_JS = "(keys) => [window.gameworldInput ? window.gameworldInput.take() : keys]"

PAD_HTML = """
<div class="gw-pad">
  <div class="gw-pad-group">
    <span></span><button data-gw-key="forward">W</button><span></span>
    <button data-gw-key="left">A</button><button data-gw-key="back">S</button>
    <button data-gw-key="right">D</button>
  </div>
  <div class="gw-pad-group">
    <button data-gw-key="jump">jump</button><button data-gw-key="sneak">sneak</button>
    <button data-gw-key="sprint">sprint</button>
    <button data-gw-key="attack">attack</button><button data-gw-key="use">use</button>
    <button data-gw-key="inventory">E</button>
  </div>
  <div class="gw-pad-group">
    <span></span><button data-gw-turn="ArrowUp">&uarr;</button><span></span>
    <button data-gw-turn="ArrowLeft">&larr;</button><button data-gw-turn="ArrowDown">&darr;</button>
    <button data-gw-turn="ArrowRight">&rarr;</button>
  </div>
</div>
"""

HELP_MD = (
    "**Keys** (click the page first): WASD move, Space jump, Shift sneak, R sprint, 1-9 hotbar, E inventory, "
    "Q drop. **Camera**: arrow keys, or drag the frame. A click on the frame attacks, a right click uses. "
    "On a touch screen, hold the buttons below. A click on a biome starts there."
)

PAGE_CSS = """
#gw-frame img { image-rendering: pixelated; object-fit: contain; width: 100%; height: 100%; }
#gw-frame { touch-action: none; user-select: none; }
.gw-pad { display: flex; gap: 1.5em; flex-wrap: wrap; justify-content: center; }
.gw-pad-group { display: grid; grid-template-columns: repeat(3, 64px); gap: 5px; }
.gw-pad button { height: 44px; border-radius: 6px; border: 1px solid #888; background: #f3f3f3; padding: 0;
  touch-action: none; user-select: none; font-size: 14px; line-height: 1; font-weight: 600; color: #222; }
.gw-pad button:active { background: #cfd8ff; }
#gw-hud { font-family: ui-monospace, monospace; font-size: 0.85em; }
"""
