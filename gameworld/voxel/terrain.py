"""Infinite terrain from a seed: biomes, height fields, surface layers, ores and trees, per chunk.

Every block is a pure function of `(seed, biome, x, y, z)`, computed from integer hashes (no global
random state), so chunks can be generated in any order, on demand, and always come out the same.
Trees are decided per cell of a coarse grid and written into every chunk they overlap, so they
cross chunk borders seamlessly.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gameworld.voxel.blocks import BLOCK_IDS

CHUNK = 16  # blocks along x and z
HEIGHT = 80  # blocks along y
SEA = 24  # water fills every empty block with y <= SEA
SNOW_LINE = SEA + 26  # hills are snow-capped above this

BIOMES: tuple[str, ...] = ("plains", "forest", "desert", "beach", "hills", "icy", "mushroom", "river")
PLAINS, FOREST, DESERT, BEACH, HILLS, ICY, MUSHROOM, RIVER = range(len(BIOMES))

_AIR = BLOCK_IDS["air"]
_GRASS = BLOCK_IDS["grass"]
_DIRT = BLOCK_IDS["dirt"]
_STONE = BLOCK_IDS["stone"]
_SAND = BLOCK_IDS["sand"]
_SANDSTONE = BLOCK_IDS["sandstone"]
_GRAVEL = BLOCK_IDS["gravel"]
_WATER = BLOCK_IDS["water"]
_ICE = BLOCK_IDS["ice"]
_SNOW = BLOCK_IDS["snow"]
_OAK_LOG = BLOCK_IDS["oak_log"]
_OAK_LEAVES = BLOCK_IDS["oak_leaves"]
_BIRCH_LOG = BLOCK_IDS["birch_log"]
_SPRUCE_LOG = BLOCK_IDS["spruce_log"]
_SPRUCE_LEAVES = BLOCK_IDS["spruce_leaves"]
_MYCELIUM = BLOCK_IDS["mycelium"]
_STEM = BLOCK_IDS["mushroom_stem"]
_RED_CAP = BLOCK_IDS["red_mushroom_block"]
_BROWN_CAP = BLOCK_IDS["brown_mushroom_block"]
_CACTUS = BLOCK_IDS["cactus"]
_COAL = BLOCK_IDS["coal_ore"]
_IRON = BLOCK_IDS["iron_ore"]
_BEDROCK = BLOCK_IDS["bedrock"]

# Tree grid per biome: one candidate per CELL x CELL blocks, present with probability TREE_P.
_TREE_CELL = np.array([13, 5, 8, 11, 8, 7, 10, 8], dtype=np.int64)
_TREE_P = np.array([0.30, 0.80, 0.35, 0.25, 0.35, 0.45, 0.55, 0.35])
_OAK, _BIRCH, _SPRUCE, _CACTUS_PLANT, _RED_MUSHROOM, _BROWN_MUSHROOM = range(6)


def biome_index(biome: str) -> int:
    try:
        return BIOMES.index(biome)
    except ValueError:
        raise ValueError(f"unknown biome {biome!r}; choose one of {list(BIOMES)}") from None


def seed_key(seed: int) -> int:
    """Mix any integer seed into 31 bits so the JIT hashes never overflow."""
    h = (int(seed) * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & 0xFFFFFFFFFFFFFFFF
    h ^= h >> 29
    h = (h * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    return int(h >> 33)


@njit(cache=True)
def hash01(key: int, x: int, y: int, z: int, salt: int) -> float:
    """Integer lattice hash -> [0, 1). All terms stay far below 2**63."""
    h = (x * 374761393 + y * 668265263 + z * 2246822519 + key + salt * 3266489917) & 0xFFFFFFFF
    h = ((h ^ (h >> 15)) * 2246822519) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * 3266489917) & 0xFFFFFFFF
    h = h ^ (h >> 16)
    return h / 4294967296.0


@njit(cache=True)
def _value_noise(key: int, x: float, z: float, scale: float, salt: int) -> float:
    fx = x / scale
    fz = z / scale
    ix = int(np.floor(fx))
    iz = int(np.floor(fz))
    tx = fx - ix
    tz = fz - iz
    tx = tx * tx * (3.0 - 2.0 * tx)
    tz = tz * tz * (3.0 - 2.0 * tz)
    a = hash01(key, ix, 0, iz, salt)
    b = hash01(key, ix + 1, 0, iz, salt)
    c = hash01(key, ix, 0, iz + 1, salt)
    d = hash01(key, ix + 1, 0, iz + 1, salt)
    return (a * (1 - tx) + b * tx) * (1 - tz) + (c * (1 - tx) + d * tx) * tz


@njit(cache=True)
def fbm(key: int, x: float, z: float, scale: float, octaves: int, salt: int) -> float:
    """Fractal value noise in [0, 1]."""
    total = 0.0
    norm = 0.0
    amp = 1.0
    for o in range(octaves):
        total += amp * _value_noise(key, x, z, scale, salt + 101 * o)
        norm += amp
        amp *= 0.5
        scale *= 0.5
    return total / norm


@njit(cache=True)
def river_distance(key: int, x: float, z: float) -> float:
    """How far (in noise units) a column is from the middle of a river; rivers where this is small."""
    return abs(fbm(key, x, z, 110.0, 3, 77) - 0.5)


@njit(cache=True)
def coast(key: int, x: float, z: float) -> float:
    """Signed distance-like coordinate to the beach shore line: negative is sea, positive is land."""
    angle = hash01(key, 0, 0, 0, 91) * 2.0 * np.pi
    return x * np.cos(angle) + z * np.sin(angle) + 14.0 * (fbm(key, x, z, 40.0, 2, 93) - 0.5)


@njit(cache=True)
def surface_height(key: int, biome: int, x: int, z: int) -> int:
    """The y of the topmost terrain block of a column (before trees and water)."""
    n = fbm(key, x, z, 48.0, 4, 11)
    if biome == PLAINS:
        h = SEA + 3.0 + 5.0 * n
    elif biome == FOREST:
        h = SEA + 3.0 + 8.0 * n
    elif biome == DESERT:
        dunes = 1.0 - abs(2.0 * fbm(key, x, z, 22.0, 2, 13) - 1.0)
        h = SEA + 3.0 + 5.0 * n + 3.0 * dunes
    elif biome == BEACH:
        c = coast(key, x, z)
        h = SEA + 0.5 + min(max(c * 0.22, -9.0), 6.0) + 2.5 * (n - 0.5)
    elif biome == HILLS:
        ridge = fbm(key, x, z, 64.0, 4, 17)
        h = SEA + 2.0 + 6.0 * n + 90.0 * max(ridge - 0.35, 0.0) ** 1.3
    elif biome == ICY:
        h = SEA + 1.0 + 14.0 * (n - 0.42)  # frozen lakes where the noise is low
    elif biome == MUSHROOM:
        h = SEA + 2.0 + 6.0 * n
    else:  # RIVER
        h = SEA + 3.0 + 7.0 * n
        d = river_distance(key, x, z)
        if d < 0.05:
            bed = SEA - 4.0 + 80.0 * d  # deepest in the middle
            h = min(h, bed)
        elif d < 0.075:
            h = min(h, SEA + 1.0 + 80.0 * (d - 0.05))
    return min(max(int(np.floor(h)), 2), HEIGHT - 12)


@njit(cache=True)
def _surface_blocks(key: int, biome: int, x: int, z: int, h: int) -> tuple:
    """(top block, filler block) of a column."""
    underwater = h < SEA
    if biome == DESERT:
        return _SAND, _SAND
    if biome == BEACH:
        if h <= SEA + 2:
            return _SAND, _SAND
        return _GRASS, _DIRT
    if biome == RIVER:
        if underwater:
            return (_GRAVEL if hash01(key, x, 0, z, 5) < 0.35 else _SAND), _SAND
        if river_distance(key, x, z) < 0.08:
            return _SAND, _DIRT
        return _GRASS, _DIRT
    if underwater:
        return (_GRAVEL if biome == HILLS else _DIRT if biome == ICY else _SAND), _DIRT
    if biome == ICY:
        return _SNOW, _DIRT
    if biome == MUSHROOM:
        return _MYCELIUM, _DIRT
    if biome == HILLS:
        slope = abs(surface_height(key, biome, x + 1, z) - surface_height(key, biome, x - 1, z)) + abs(
            surface_height(key, biome, x, z + 1) - surface_height(key, biome, x, z - 1)
        )
        if h > SNOW_LINE:
            return _SNOW, _STONE
        if slope >= 4:
            return _STONE, _STONE
    return _GRASS, _DIRT


@njit(cache=True)
def _stone_or_ore(key: int, x: int, y: int, z: int) -> int:
    cell = hash01(key, x >> 1, y >> 1, z >> 1, 31)
    if cell < 0.035 and hash01(key, x, y, z, 37) < 0.7:
        return _COAL
    if y < SEA and cell > 0.975 and hash01(key, x, y, z, 41) < 0.6:
        return _IRON
    return _STONE


@njit(cache=True)
def _put(chunk, x0: int, z0: int, x: int, y: int, z: int, block: int, only_air: bool) -> None:
    lx = x - x0
    lz = z - z0
    if 0 <= lx < CHUNK and 0 <= lz < CHUNK and 0 <= y < HEIGHT:
        current = chunk[lx, lz, y]
        if not only_air or current == _AIR:
            chunk[lx, lz, y] = block


@njit(cache=True)
def _blob(chunk, x0, z0, x, y, z, radius, block, key, salt):
    """A square layer of leaves with randomly trimmed corners."""
    for dx in range(-radius, radius + 1):
        for dz in range(-radius, radius + 1):
            corner = abs(dx) == radius and abs(dz) == radius
            if corner and (radius == 1 or hash01(key, x + dx, y, z + dz, salt) < 0.6):
                continue
            _put(chunk, x0, z0, x + dx, y, z + dz, block, True)


@njit(cache=True)
def _tree(chunk, x0, z0, key, kind, x, y, z, size):
    """Write one tree (or cactus, or giant mushroom) standing on the block at (x, y - 1, z)."""
    if kind == _CACTUS_PLANT:
        for dy in range(1 + size % 3):
            _put(chunk, x0, z0, x, y + dy, z, _CACTUS, False)
        return
    if kind in (_RED_MUSHROOM, _BROWN_MUSHROOM):
        stem = 4 + size % 3
        for dy in range(stem):
            _put(chunk, x0, z0, x, y + dy, z, _STEM, False)
        top = y + stem
        if kind == _BROWN_MUSHROOM:
            _blob(chunk, x0, z0, x, top, z, 3, _BROWN_CAP, key, 3)
        else:
            _blob(chunk, x0, z0, x, top, z, 1, _RED_CAP, key, 3)
            for dy in range(-3, 0):
                for dx in range(-2, 3):
                    for dz in range(-2, 3):
                        ring = max(abs(dx), abs(dz)) == 2 and not (abs(dx) == 2 and abs(dz) == 2)
                        if ring:
                            _put(chunk, x0, z0, x + dx, top + dy, z + dz, _RED_CAP, True)
            _blob(chunk, x0, z0, x, top, z, 2, _RED_CAP, key, 4)
        return
    if kind == _SPRUCE:
        trunk = 6 + size % 3
        for dy in range(trunk):
            _put(chunk, x0, z0, x, y + dy, z, _SPRUCE_LOG, False)
        top = y + trunk
        _put(chunk, x0, z0, x, top, z, _SPRUCE_LEAVES, True)
        _put(chunk, x0, z0, x, top + 1, z, _SPRUCE_LEAVES, True)
        radius = 1
        for dy in range(0, trunk - 2):
            _blob(chunk, x0, z0, x, top - dy, z, radius, _SPRUCE_LEAVES, key, 6 + dy)
            radius = 1 if radius == 2 else radius + 1
        return
    log = _BIRCH_LOG if kind == _BIRCH else _OAK_LOG
    trunk = 4 + size % 3
    top = y + trunk
    _blob(chunk, x0, z0, x, top - 2, z, 2, _OAK_LEAVES, key, 7)
    _blob(chunk, x0, z0, x, top - 1, z, 2, _OAK_LEAVES, key, 8)
    _blob(chunk, x0, z0, x, top, z, 1, _OAK_LEAVES, key, 9)
    _put(chunk, x0, z0, x, top + 1, z, _OAK_LEAVES, True)
    for dx, dz in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        _put(chunk, x0, z0, x + dx, top + 1, z + dz, _OAK_LEAVES, True)
    for dy in range(trunk):
        _put(chunk, x0, z0, x, y + dy, z, log, False)


@njit(cache=True)
def _tree_kind(key: int, biome: int, x: int, z: int, top_block: int) -> int:
    """Which plant grows at a candidate spot, or -1 for none (wrong ground)."""
    r = hash01(key, x, 1, z, 55)
    if biome == DESERT:
        return _CACTUS_PLANT if top_block == _SAND else -1
    if biome == MUSHROOM:
        if top_block != _MYCELIUM:
            return -1
        return _RED_MUSHROOM if r < 0.5 else _BROWN_MUSHROOM
    if biome == ICY:
        return _SPRUCE if top_block == _SNOW else -1
    if top_block != _GRASS:
        return -1
    if biome == HILLS:
        return _SPRUCE if r < 0.5 else _OAK
    if biome in (FOREST, RIVER):
        return _BIRCH if r < 0.3 else _OAK
    return _OAK


@njit(cache=True)
def generate_chunk(key: int, biome: int, cx: int, cz: int) -> np.ndarray:
    """Blocks of chunk (cx, cz): uint8 [16 (x), 16 (z), HEIGHT (y)]."""
    chunk = np.zeros((CHUNK, CHUNK, HEIGHT), dtype=np.uint8)
    x0 = cx * CHUNK
    z0 = cz * CHUNK
    for lx in range(CHUNK):
        for lz in range(CHUNK):
            x = x0 + lx
            z = z0 + lz
            h = surface_height(key, biome, x, z)
            top, filler = _surface_blocks(key, biome, x, z, h)
            chunk[lx, lz, 0] = _BEDROCK
            for y in range(1, h + 1):
                depth = h - y
                if depth == 0:
                    block = top
                elif depth <= 3:
                    block = filler
                elif biome == DESERT and depth <= 7:
                    block = _SANDSTONE
                else:
                    block = _STONE
                if block == _STONE:
                    block = _stone_or_ore(key, x, y, z)
                chunk[lx, lz, y] = block
            for y in range(h + 1, SEA + 1):
                chunk[lx, lz, y] = _ICE if (biome == ICY and y == SEA) else _WATER
    cell = _TREE_CELL[biome]
    p = _TREE_P[biome]
    margin = 3
    for gx in range((x0 - margin) // cell, (x0 + CHUNK + margin) // cell + 1):
        for gz in range((z0 - margin) // cell, (z0 + CHUNK + margin) // cell + 1):
            if hash01(key, gx, 2, gz, 61) >= p:
                continue
            tx = gx * cell + int(hash01(key, gx, 3, gz, 62) * (cell - 1))
            tz = gz * cell + int(hash01(key, gx, 4, gz, 63) * (cell - 1))
            h = surface_height(key, biome, tx, tz)
            if h <= SEA:
                continue
            top, _ = _surface_blocks(key, biome, tx, tz, h)
            kind = _tree_kind(key, biome, tx, tz, top)
            if kind >= 0:
                size = int(hash01(key, tx, 5, tz, 64) * 1000.0)
                _tree(chunk, x0, z0, key, kind, tx, h + 1, tz, size)
    return chunk
