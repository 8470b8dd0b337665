"""The in-game overlay drawn as in Minecraft: an inverting crosshair and the hotbar with block icons."""

from __future__ import annotations

import numpy as np

from gameworld.hud import hotbar_box
from gameworld.voxel.textures import SIDE, TEX


def draw_crosshair(frame: np.ndarray) -> None:
    """Invert the pixels of a small plus in the centre of `frame` uint8 [H, W, 3] (in place)."""
    h, w = frame.shape[:2]
    arm = max(2, h // 36)
    thick = 1 if h < 288 else 2
    cy, cx = h // 2, w // 2
    y0, x0 = cy - thick // 2, cx - thick // 2
    frame[y0 : y0 + thick, cx - arm : cx + arm + 1] = 255 - frame[y0 : y0 + thick, cx - arm : cx + arm + 1]
    above = frame[cy - arm : y0, x0 : x0 + thick]
    below = frame[y0 + thick : cy + arm + 1, x0 : x0 + thick]
    frame[cy - arm : y0, x0 : x0 + thick] = 255 - above
    frame[y0 + thick : cy + arm + 1, x0 : x0 + thick] = 255 - below


def draw_hotbar(frame: np.ndarray, atlas: np.ndarray, slots: list[int], selected: int) -> None:
    """Draw the 9-slot hotbar at the bottom centre of `frame` (in place); `slots` are block ids."""
    box = hotbar_box(frame.shape[1], frame.shape[0])
    if box is None:
        return
    y0, y1, x0, _ = box
    s = y1 - y0  # pixels per slot
    bar = frame[y0 : y0 + s, x0 : x0 + 9 * s]
    bar[:] = (bar.astype(np.uint16) * 2 // 5 + 40).astype(np.uint8)  # dark translucent background
    icon = max(1, s - 4)
    idx = (np.arange(icon) * TEX) // icon
    for k, block in enumerate(slots):
        sx = x0 + k * s
        frame[y0 : y0 + s, sx] = 90  # slot dividers
        if block:
            texture = atlas[block, SIDE][idx][:, idx]  # nearest-neighbour resize [icon, icon, 3]
            frame[y0 + 2 : y0 + 2 + icon, sx + 2 : sx + 2 + icon] = texture
    frame[y0 : y0 + s, x0 + 9 * s - 1] = 90
    sel = x0 + selected * s
    for y_edge in (y0, y0 + s - 1):
        frame[y_edge, sel : sel + s] = 255
    for x_edge in (sel, sel + s - 1):
        frame[y0 : y0 + s, x_edge] = 255
