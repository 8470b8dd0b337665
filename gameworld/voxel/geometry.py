"""JIT geometry queries on the window grid: box sweeps, box overlap tests and the target ray.

All positions are world coordinates in blocks; `ox, oz` is the world position of `grid[0, 0]`.
The grid is `uint8 [X, Z, Y]`. Below y = 0 and outside the window counts as solid (nothing can
fall out of the world); above the top is air.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gameworld.voxel.blocks import AIR, SOLID, WATER

EPS = 1e-7


@njit(cache=True)
def _solid(grid, ox: int, oz: int, x: int, y: int, z: int) -> bool:
    if y < 0:
        return True
    if y >= grid.shape[2]:
        return False
    ix = x - ox
    iz = z - oz
    if ix < 0 or iz < 0 or ix >= grid.shape[0] or iz >= grid.shape[1]:
        return True
    return SOLID[grid[ix, iz, y]]


@njit(cache=True)
def box_collides(grid, ox, oz, x0, y0, z0, x1, y1, z1) -> bool:
    """Does the box [x0, x1] x [y0, y1] x [z0, z1] overlap any solid block?"""
    for x in range(int(np.floor(x0 + EPS)), int(np.floor(x1 - EPS)) + 1):
        for z in range(int(np.floor(z0 + EPS)), int(np.floor(z1 - EPS)) + 1):
            for y in range(int(np.floor(y0 + EPS)), int(np.floor(y1 - EPS)) + 1):
                if _solid(grid, ox, oz, x, y, z):
                    return True
    return False


@njit(cache=True)
def box_in_water(grid, ox, oz, x0, y0, z0, x1, y1, z1) -> bool:
    for x in range(int(np.floor(x0 + EPS)), int(np.floor(x1 - EPS)) + 1):
        for z in range(int(np.floor(z0 + EPS)), int(np.floor(z1 - EPS)) + 1):
            for y in range(int(np.floor(y0 + EPS)), int(np.floor(y1 - EPS)) + 1):
                ix = x - ox
                iz = z - oz
                inside = 0 <= ix < grid.shape[0] and 0 <= iz < grid.shape[1] and 0 <= y < grid.shape[2]
                if inside and grid[ix, iz, y] == WATER:
                    return True
    return False


@njit(cache=True)
def clip_move(grid, ox, oz, x0, y0, z0, x1, y1, z1, axis: int, d: float) -> float:
    """How far the box can move along `axis` (0 x, 1 y, 2 z) towards `d` before touching a solid."""
    lo = np.array((x0, y0, z0))
    hi = np.array((x1, y1, z1))
    b = (axis + 1) % 3
    c = (axis + 2) % 3
    b_lo, b_hi = int(np.floor(lo[b] + EPS)), int(np.floor(hi[b] - EPS))
    c_lo, c_hi = int(np.floor(lo[c] + EPS)), int(np.floor(hi[c] - EPS))
    cell = np.zeros(3, dtype=np.int64)
    if d > 0:
        first, last, step = int(np.floor(hi[axis] - EPS)) + 1, int(np.floor(hi[axis] + d - EPS)), 1
    elif d < 0:
        first, last, step = int(np.floor(lo[axis] + EPS)) - 1, int(np.floor(lo[axis] + d + EPS)), -1
    else:
        return 0.0
    a = first
    while (step > 0 and a <= last) or (step < 0 and a >= last):
        cell[axis] = a
        for i in range(b_lo, b_hi + 1):
            cell[b] = i
            for j in range(c_lo, c_hi + 1):
                cell[c] = j
                if _solid(grid, ox, oz, cell[0], cell[1], cell[2]):
                    if step > 0:
                        return max(0.0, a - hi[axis])
                    return min(0.0, a + 1 - lo[axis])
        a += step
    return d


@njit(cache=True)
def raycast_block(grid, ox, oz, px, py, pz, dx, dy, dz, reach):
    """First solid block along the ray within `reach` (water and air are passed through).

    Returns (hit, bx, by, bz, nx, ny, nz, distance), the normal pointing out of the face hit.
    """
    x = int(np.floor(px))
    y = int(np.floor(py))
    z = int(np.floor(pz))
    sx = 1 if dx > 0 else -1
    sy = 1 if dy > 0 else -1
    sz = 1 if dz > 0 else -1
    inf = 1e30
    tdx = abs(1.0 / dx) if dx != 0 else inf
    tdy = abs(1.0 / dy) if dy != 0 else inf
    tdz = abs(1.0 / dz) if dz != 0 else inf
    tx = ((x + 1 - px) if dx > 0 else (px - x)) * tdx if dx != 0 else inf
    ty = ((y + 1 - py) if dy > 0 else (py - y)) * tdy if dy != 0 else inf
    tz = ((z + 1 - pz) if dz > 0 else (pz - z)) * tdz if dz != 0 else inf
    nx = ny = nz = 0
    t = 0.0
    while t <= reach:
        ix = x - ox
        iz = z - oz
        if ix < 0 or iz < 0 or ix >= grid.shape[0] or iz >= grid.shape[1] or y < 0 or y >= grid.shape[2]:
            if y >= grid.shape[2] and dy >= 0:
                break
        else:
            block = grid[ix, iz, y]
            if block != AIR and block != WATER:
                return True, x, y, z, nx, ny, nz, t
        if tx <= ty and tx <= tz:
            t = tx
            x += sx
            tx += tdx
            nx, ny, nz = -sx, 0, 0
        elif ty <= tz:
            t = ty
            y += sy
            ty += tdy
            nx, ny, nz = 0, -sy, 0
        else:
            t = tz
            z += sz
            tz += tdz
            nx, ny, nz = 0, 0, -sz
    return False, 0, 0, 0, 0, 0, 0, 0.0
