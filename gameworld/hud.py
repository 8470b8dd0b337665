"""Where the game's overlay sits on a frame, as in Minecraft: the hotbar at the bottom centre.

The voxel game draws its hotbar here (`gameworld.voxel.hud`) and the motion prior's warp keeps it
still (`gameworld.metrics.motion.apply_motion`). A module of its own so that the warp, which the
engine runs, does not import the voxel game (and its numba renderer).
"""

from __future__ import annotations

MIN_SLOT = 5  # below this many pixels per slot the hotbar is left out (frames under ~84 px wide)


def hotbar_slot_size(width: int, height: int) -> int:
    """Pixels per hotbar slot: about 11% of the height, as Minecraft's GUI, but at most 60% of the width."""
    return min(round(height * 0.11), int(width * 0.6 / 9))


def hotbar_box(width: int, height: int) -> tuple[int, int, int, int] | None:
    """Where the hotbar sits in a width x height frame, (top, bottom, left, right) pixels (bottom and
    right excluded): the bottom centre, as in Minecraft. None in frames too small to draw it."""
    s = hotbar_slot_size(width, height)
    if s < MIN_SLOT:
        return None
    top, left = height - s - max(1, s // 8), (width - 9 * s) // 2
    return top, top + s, left, left + 9 * s
