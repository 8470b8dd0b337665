"""Procedural 16x16 block textures (noise and palettes; no external assets).

`build_atlas()` returns `uint8 [N_BLOCKS, 3, 16, 16, 3]`: for each block a top, side and bottom face.
Every texture is drawn from a generator seeded by the block name, so the atlas is the same on
every run and machine.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from gameworld.voxel.blocks import BLOCKS, N_BLOCKS

TEX = 16
TOP, SIDE, BOTTOM = 0, 1, 2
CRACK_STAGES = 10

Texture = np.ndarray  # float32 [16, 16, 3] in 0..255


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def _smooth_noise(rng: np.random.Generator, cells: int) -> np.ndarray:
    """Tileable value noise in [0, 1], `cells` lattice cells across the 16 texels. [16, 16]"""
    lattice = rng.random((cells, cells))
    coords = np.arange(TEX) * cells / TEX
    i0 = np.floor(coords).astype(int)
    f = coords - i0
    f = f * f * (3 - 2 * f)
    i1 = (i0 + 1) % cells
    rows0 = lattice[i0][:, i0] * (1 - f)[None, :] + lattice[i0][:, i1] * f[None, :]
    rows1 = lattice[i1][:, i0] * (1 - f)[None, :] + lattice[i1][:, i1] * f[None, :]
    return rows0 * (1 - f)[:, None] + rows1 * f[:, None]


def _speckled(rng: np.random.Generator, rgb: tuple[int, int, int], amount: float, blotch: float = 0.0):
    """A flat colour with per-texel brightness noise and optional larger blotches."""
    brightness = 1.0 + amount * (rng.random((TEX, TEX)) * 2 - 1)
    if blotch:
        brightness += blotch * (_smooth_noise(rng, 4) * 2 - 1)
    texture = np.array(rgb, np.float32)[None, None, :] * brightness[..., None]
    return np.clip(texture, 0, 255).astype(np.float32)


def _spots(rng: np.random.Generator, base: Texture, rgb: tuple[int, int, int], n: int, size: int) -> Texture:
    """Paint `n` small clusters of `rgb` (ores, mushroom spots, pebbles)."""
    out = base.copy()
    for _ in range(n):
        cy, cx = rng.integers(1, TEX - 1, size=2)
        for _ in range(size):
            y = int(np.clip(cy + rng.integers(-1, 2), 0, TEX - 1))
            x = int(np.clip(cx + rng.integers(-1, 2), 0, TEX - 1))
            out[y, x] = np.array(rgb, np.float32) * (0.85 + 0.3 * rng.random())
    return out


def _grass_top(rng):
    return _speckled(rng, (96, 160, 56), 0.18, 0.08)


def _dirt(rng):
    return _spots(rng, _speckled(rng, (134, 96, 67), 0.16, 0.06), (95, 66, 45), 10, 3)


def _topped(rng, below: Texture, top: Texture, depth: int) -> Texture:
    """A side face: `top` hangs over `below` with a jagged lower edge (grass, mycelium, snow sides)."""
    out = below.copy()
    edge = depth + rng.integers(-1, 2, size=TEX)
    for x in range(TEX):
        out[: edge[x], x] = top[: edge[x], x]
    return out


def _stone(rng):
    return _speckled(rng, (126, 126, 126), 0.10, 0.14)


def _cobblestone(rng):
    points = rng.random((12, 2)) * TEX
    yy, xx = np.mgrid[0:TEX, 0:TEX] + 0.5
    distances = []
    for py, px in points:  # tileable distance to each cell centre
        dy = np.minimum(abs(yy - py), TEX - abs(yy - py))
        dx = np.minimum(abs(xx - px), TEX - abs(xx - px))
        distances.append(np.hypot(dy, dx))
    distances = np.stack(distances)  # [cells, 16, 16]
    cell = np.argmin(distances, axis=0)
    nearest_two = np.sort(distances, axis=0)[:2]
    shade = (0.75 + 0.4 * rng.random(len(points)))[cell]
    border = (nearest_two[1] - nearest_two[0]) < 1.1
    base = _speckled(rng, (122, 122, 122), 0.08)
    base *= shade[..., None]
    base[border] *= 0.55
    return np.clip(base, 0, 255)


def _sand(rng):
    return _speckled(rng, (219, 206, 160), 0.07, 0.04)


def _sandstone_top(rng):
    return _speckled(rng, (214, 192, 134), 0.04)


def _sandstone_side(rng):
    out = _speckled(rng, (212, 190, 130), 0.04)
    out[0:3] *= 1.05  # smooth cap, then layered bands as in Minecraft's sandstone
    for row in (5, 9, 13):
        out[row] *= 0.86
    return np.clip(out, 0, 255)


def _gravel(rng):
    out = _speckled(rng, (131, 124, 122), 0.12)
    out = _spots(rng, out, (90, 84, 82), 14, 3)
    return _spots(rng, out, (168, 150, 140), 8, 2)


def _water(rng):
    out = _speckled(rng, (46, 90, 204), 0.05)
    waves = _smooth_noise(rng, 4)
    out[waves > 0.7] = np.array((80, 130, 230), np.float32)
    return out


def _ice(rng):
    out = _speckled(rng, (150, 188, 250), 0.05)
    yy, xx = np.mgrid[0:TEX, 0:TEX]
    streak = ((xx + yy) % 7 == 0) | ((xx - 2 * yy) % 11 == 0)
    out[streak] = np.array((200, 225, 255), np.float32)
    return out


def _snow(rng):
    return _speckled(rng, (236, 244, 250), 0.05, 0.04)


def _log_side(rng, rgb, dark):
    out = _speckled(rng, rgb, 0.08)
    for x in range(TEX):
        if rng.random() < 0.35:
            out[:, x] *= dark
    return np.clip(out, 0, 255)


def _log_top(rng, bark_rgb):
    out = _speckled(rng, (176, 144, 90), 0.05)
    yy, xx = np.mgrid[0:TEX, 0:TEX] + 0.5
    r = np.hypot(yy - 8, xx - 8)
    out[(r.astype(int) % 3) == 0] *= 0.85
    edge = (yy < 1) | (yy > 15) | (xx < 1) | (xx > 15)
    out[edge] = np.array(bark_rgb, np.float32)
    return np.clip(out, 0, 255)


def _birch_side(rng):
    out = _speckled(rng, (218, 216, 208), 0.04)
    for _ in range(7):
        y = rng.integers(0, TEX)
        x = rng.integers(0, TEX - 4)
        out[y, x : x + rng.integers(2, 5)] = np.array((45, 45, 40), np.float32)
    return out


def _leaves(rng, rgb):
    out = _speckled(rng, rgb, 0.28, 0.10)
    holes = rng.random((TEX, TEX)) < 0.12
    out[holes] *= 0.45
    return np.clip(out, 0, 255)


def _planks(rng):
    out = _speckled(rng, (164, 132, 80), 0.06)
    for row in range(0, TEX, 4):
        out[row + 3] *= 0.62  # seam under each board
        seam = (rng.integers(0, TEX) + row * 2) % TEX
        out[row : row + 3, seam] *= 0.7
        out[row : row + 3] *= 0.94 + 0.12 * rng.random()
    return np.clip(out, 0, 255)


def _mycelium_top(rng):
    return _spots(rng, _speckled(rng, (112, 98, 112), 0.15), (150, 132, 150), 12, 2)


def _stem(rng):
    out = _speckled(rng, (205, 198, 186), 0.05)
    for x in range(TEX):
        if rng.random() < 0.3:
            out[:, x] *= 0.9
    return np.clip(out, 0, 255)


def _red_mushroom(rng):
    return _spots(rng, _speckled(rng, (186, 38, 36), 0.08), (236, 230, 226), 6, 5)


def _brown_mushroom(rng):
    return _speckled(rng, (148, 110, 80), 0.10, 0.06)


def _cactus_side(rng):
    out = _speckled(rng, (86, 132, 44), 0.06)
    for x in (1, 5, 10, 14):
        out[:, x] *= 0.7
    for _ in range(10):
        y, x = rng.integers(0, TEX, size=2)
        out[y, x] = np.array((210, 220, 170), np.float32)
    return np.clip(out, 0, 255)


def _cactus_top(rng):
    out = _speckled(rng, (108, 156, 60), 0.06)
    yy, xx = np.mgrid[0:TEX, 0:TEX]
    out[(np.abs(yy - 7.5) + np.abs(xx - 7.5)) % 5 < 1] *= 0.75
    return np.clip(out, 0, 255)


def _ore(rng, rgb):
    return _spots(rng, _stone(rng), rgb, 6, 5)


def _bricks(rng):
    out = _speckled(rng, (150, 74, 58), 0.10)
    mortar = np.array((170, 162, 150), np.float32)
    for row in range(0, TEX, 4):
        out[row + 3] = mortar
        offset = 0 if (row // 4) % 2 == 0 else 4
        for x in range(offset, TEX, 8):
            out[row : row + 3, x] = mortar
    return out


def _bedrock(rng):
    return _spots(rng, _speckled(rng, (70, 70, 70), 0.25, 0.2), (25, 25, 25), 14, 4)


def _faces(top: Callable, side: Callable | None = None, bottom: Callable | None = None) -> Callable:
    def make(rng: np.random.Generator) -> tuple[Texture, Texture, Texture]:
        t = top(rng)
        s = side(rng) if side else t
        b = bottom(rng) if bottom else t
        return t, s, b

    return make


def _grass_side(rng):
    return _topped(rng, _dirt(rng), _grass_top(rng), 4)


def _mycelium_side(rng):
    return _topped(rng, _dirt(rng), _mycelium_top(rng), 3)


_MAKERS: dict[str, Callable] = {
    "grass": _faces(_grass_top, _grass_side, _dirt),
    "dirt": _faces(_dirt),
    "stone": _faces(_stone),
    "cobblestone": _faces(_cobblestone),
    "sand": _faces(_sand),
    "sandstone": _faces(_sandstone_top, _sandstone_side),
    "gravel": _faces(_gravel),
    "water": _faces(_water),
    "ice": _faces(_ice),
    "snow": _faces(_snow),
    "oak_log": _faces(lambda r: _log_top(r, (100, 80, 48)), lambda r: _log_side(r, (104, 82, 50), 0.75)),
    "oak_leaves": _faces(lambda r: _leaves(r, (58, 118, 32))),
    "birch_log": _faces(lambda r: _log_top(r, (216, 214, 206)), _birch_side),
    "spruce_log": _faces(lambda r: _log_top(r, (60, 40, 20)), lambda r: _log_side(r, (62, 42, 20), 0.7)),
    "spruce_leaves": _faces(lambda r: _leaves(r, (44, 84, 56))),
    "planks": _faces(_planks),
    "mycelium": _faces(_mycelium_top, _mycelium_side, _dirt),
    "mushroom_stem": _faces(_stem),
    "red_mushroom_block": _faces(_red_mushroom),
    "brown_mushroom_block": _faces(_brown_mushroom),
    "cactus": _faces(_cactus_top, _cactus_side),
    "coal_ore": _faces(lambda r: _ore(r, (30, 30, 30))),
    "iron_ore": _faces(lambda r: _ore(r, (214, 172, 140))),
    "bricks": _faces(_bricks),
    "bedrock": _faces(_bedrock),
}


def build_atlas() -> np.ndarray:
    """All block faces: uint8 [N_BLOCKS, 3 (top, side, bottom), 16, 16, 3]; air stays black."""
    atlas = np.zeros((N_BLOCKS, 3, TEX, TEX, 3), dtype=np.uint8)
    for index, block in enumerate(BLOCKS):
        if block.name == "air":
            continue
        faces = _MAKERS[block.name](_rng(block.name))
        for face, texture in enumerate(faces):
            atlas[index, face] = np.clip(np.rint(texture), 0, 255).astype(np.uint8)
    return atlas


def build_cracks() -> np.ndarray:
    """Breaking overlay: bool [CRACK_STAGES, 16, 16]; stage k covers what stage k-1 did and more."""
    rng = _rng("cracks")
    masks = np.zeros((CRACK_STAGES, TEX, TEX), dtype=np.bool_)
    walkers = [np.array([8, 8]) for _ in range(5)]
    current = np.zeros((TEX, TEX), dtype=np.bool_)
    for stage in range(CRACK_STAGES):
        for _ in range(4):
            for w in walkers:
                w += rng.integers(-1, 2, size=2)
                np.clip(w, 0, TEX - 1, out=w)
                current[w[0], w[1]] = True
        masks[stage] = current
    return masks
