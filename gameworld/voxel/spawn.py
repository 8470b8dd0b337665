"""Where the player starts: a standing spot near the origin that shows what the biome is about.

Beaches and icy lakes start on the shore looking along the water, hills start in a valley looking
up the slopes, rivers start on the bank facing the river, the rest start anywhere on dry land.
"""

from __future__ import annotations

import math

from gameworld.actions import wrap_degrees
from gameworld.voxel.blocks import AIR
from gameworld.voxel.chunks import ChunkStore
from gameworld.voxel.terrain import (
    BEACH,
    BIOMES,
    HILLS,
    ICY,
    RIVER,
    SEA,
    hash01,
    river_distance,
    surface_height,
)

# biome -> (lowest and highest surface y allowed, look towards "low"/"high" ground or None, extra yaw)
_PREFERENCES = {
    BEACH: (SEA + 1, SEA + 2, "low", 40.0),
    ICY: (SEA + 1, SEA + 2, "low", 30.0),
    HILLS: (SEA + 1, SEA + 8, "high", 0.0),
    RIVER: (SEA + 1, SEA + 6, "low", 0.0),
}
_SEARCH_RADIUS = 1024
_LOOK_DIRECTIONS = 16


def _yaw_towards(key: int, biome: int, x: int, z: int, highest: bool) -> float:
    """Yaw (degrees, Minecraft convention) towards the lowest or highest ground a little way off,
    among the directions not blocked by a wall right in front of the player."""
    h = surface_height(key, biome, x, z)
    best_yaw, best = 0.0, None
    for k in range(_LOOK_DIRECTIONS):
        yaw = 360.0 * k / _LOOK_DIRECTIONS - 180.0
        fx, fz = -math.sin(math.radians(yaw)), math.cos(math.radians(yaw))
        near = max(surface_height(key, biome, round(x + r * fx), round(z + r * fz)) for r in range(1, 7))
        if near > h + 1:
            continue
        mean = sum(surface_height(key, biome, round(x + r * fx), round(z + r * fz)) for r in (8, 16, 24))
        if best is None or (mean > best if highest else mean < best):
            best_yaw, best = yaw, mean
    return best_yaw


def _fits(store: ChunkStore, key: int, biome: int, x: int, z: int) -> bool:
    h = surface_height(key, biome, x, z)
    low, high, _, _ = _PREFERENCES.get(biome, (SEA + 1, 10_000, None, 0.0))
    if not low <= h <= high or store.get(x, h + 1, z) != AIR or store.get(x, h + 2, z) != AIR:
        return False
    return biome != RIVER or 0.075 <= river_distance(key, x, z) <= 0.1


def find_spawn(store: ChunkStore, key: int, biome: int) -> tuple[float, float, float, float]:
    """(x, y, z, yaw) of the start: feet on the surface at the centre of a block."""
    for radius in range(0, _SEARCH_RADIUS, 3):
        steps = max(1, 8 * radius // 3)
        for k in range(steps):
            angle = 2 * math.pi * k / steps
            x, z = round(radius * math.cos(angle)), round(radius * math.sin(angle))
            if not _fits(store, key, biome, x, z):
                continue
            _, _, look, offset = _PREFERENCES.get(biome, (0, 0, None, 0.0))
            if look is None:
                yaw = hash01(key, 9, 9, 9, 97) * 360.0 - 180.0
            else:
                yaw = _yaw_towards(key, biome, x, z, look == "high") + offset
            return x + 0.5, float(surface_height(key, biome, x, z) + 1), z + 0.5, wrap_degrees(yaw)
    raise RuntimeError(f"no spawn point found for biome {BIOMES[biome]!r} within {_SEARCH_RADIUS} blocks")
