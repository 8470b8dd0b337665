"""First-person ray casting renderer (numba): one DDA ray per pixel through the window grid.

Textured faces with per-face sun shading, translucent water, a sky gradient with a sun, distance
fog, and the targeted block drawn with an outline and breaking cracks. Runs single-threaded;
the frame is a pure function of its inputs (bit-identical across calls).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from gameworld.voxel.blocks import AIR, WATER
from gameworld.voxel.textures import BOTTOM, SIDE, TEX, TOP

SUN = np.array((0.35, 0.80, 0.48)) / np.linalg.norm((0.35, 0.80, 0.48))
# Light per face normal: index = axis * 2 + (normal > 0): -x, +x, -y (bottom), +y (top), -z, +z.
FACE_LIGHT = np.array(
    [0.62 + 0.38 * max(0.0, n) for n in (-SUN[0], SUN[0], -SUN[1], SUN[1], -SUN[2], SUN[2])]
)
SKY_HORIZON = np.array((196.0, 218.0, 250.0))
SKY_ZENITH = np.array((112.0, 158.0, 238.0))
UNDERWATER_FOG = np.array((28.0, 52.0, 120.0))
UNDERWATER_VIEW = 12.0
OUTLINE = 0.035  # outline width in block units on the targeted block


@njit(cache=True)
def _sky(dx, dy, dz, out, j, i):
    t = math.sqrt(max(dy, 0.0))
    sun = dx * SUN[0] + dy * SUN[1] + dz * SUN[2]
    for c in range(3):
        v = SKY_HORIZON[c] * (1.0 - t) + SKY_ZENITH[c] * t
        if sun > 0.9975:
            v = 255.0 if c < 2 else 235.0
        elif sun > 0.99:
            v += (255.0 - v) * (sun - 0.99) / 0.0075 * 0.6
        out[j, i, c] = np.uint8(min(v, 255.0))


@njit(cache=True)
def render(
    grid, ox, oz, top_y, ex, ey, ez, yaw_deg, pitch_deg, fov_deg, view_distance,
    atlas, cracks, target, crack_stage, out, ids,
):
    """Draw the view from eye (ex, ey, ez) into `out` uint8 [H, W, 3] and block ids into `ids` [H, W].

    `target` is int64 [3] (the targeted block, or y = -1 for none); `crack_stage` < 0 for no cracks.
    """
    height, width = out.shape[0], out.shape[1]
    yaw = math.radians(yaw_deg)
    pitch = math.radians(pitch_deg)
    fx, fy, fz = -math.sin(yaw) * math.cos(pitch), -math.sin(pitch), math.cos(yaw) * math.cos(pitch)
    rx, ry, rz = -math.cos(yaw), 0.0, -math.sin(yaw)
    ux, uy, uz = ry * fz - rz * fy, rz * fx - rx * fz, rx * fy - ry * fx  # right x forward
    half = math.tan(math.radians(fov_deg) / 2.0)
    aspect = width / height
    px, py, pz = ex - ox, ey, ez - oz  # eye in window coordinates
    nx_cells, nz_cells, ny_cells = grid.shape[0], grid.shape[1], grid.shape[2]
    x0, y0, z0 = int(math.floor(px)), int(math.floor(py)), int(math.floor(pz))
    eye_in_water = (
        0 <= x0 < nx_cells and 0 <= z0 < nz_cells and 0 <= y0 < ny_cells and grid[x0, z0, y0] == WATER
    )
    max_t = UNDERWATER_VIEW if eye_in_water else view_distance
    fog_start = 0.0 if eye_in_water else 0.6 * view_distance
    tgt_x, tgt_y, tgt_z = target[0] - ox, target[1], target[2] - oz
    inf = 1e30
    for j in range(height):
        sy = (1.0 - 2.0 * (j + 0.5) / height) * half
        for i in range(width):
            sx = (2.0 * (i + 0.5) / width - 1.0) * half * aspect
            dx = fx + sx * rx + sy * ux
            dy = fy + sx * ry + sy * uy
            dz = fz + sx * rz + sy * uz
            norm = math.sqrt(dx * dx + dy * dy + dz * dz)
            dx /= norm
            dy /= norm
            dz /= norm
            x, y, z = x0, y0, z0
            stx = 1 if dx > 0 else -1
            sty = 1 if dy > 0 else -1
            stz = 1 if dz > 0 else -1
            tdx = abs(1.0 / dx) if dx != 0 else inf
            tdy = abs(1.0 / dy) if dy != 0 else inf
            tdz = abs(1.0 / dz) if dz != 0 else inf
            tx = ((x + 1 - px) if dx > 0 else (px - x)) * tdx if dx != 0 else inf
            ty = ((y + 1 - py) if dy > 0 else (py - y)) * tdy if dy != 0 else inf
            tz = ((z + 1 - pz) if dz > 0 else (pz - z)) * tdz if dz != 0 else inf
            t = 0.0
            axis = -1
            in_water = eye_in_water
            water_in = 0.0
            water_depth = 0.0
            water_r = UNDERWATER_FOG[0]
            water_g = UNDERWATER_FOG[1]
            water_b = UNDERWATER_FOG[2]
            seen_water = eye_in_water
            block = AIR
            while True:
                if tx <= ty and tx <= tz:
                    t = tx
                    x += stx
                    tx += tdx
                    axis = 0
                elif ty <= tz:
                    t = ty
                    y += sty
                    ty += tdy
                    axis = 1
                else:
                    t = tz
                    z += stz
                    tz += tdz
                    axis = 2
                if t > max_t or x < 0 or z < 0 or x >= nx_cells or z >= nz_cells or y < 0:
                    block = AIR
                    break
                if y >= top_y:
                    if dy >= 0:
                        block = AIR
                        break
                    continue
                cell = grid[x, z, y]
                if cell == WATER:
                    if not in_water:
                        in_water = True
                        water_in = t
                        if not seen_water:
                            seen_water = True
                            hx = px + t * dx
                            hz = pz + t * dz
                            wu = int((hx - math.floor(hx)) * TEX) % TEX
                            wv = int((hz - math.floor(hz)) * TEX) % TEX
                            wl = FACE_LIGHT[3] if axis == 1 else FACE_LIGHT[1]
                            water_r = atlas[WATER, TOP, wv, wu, 0] * wl
                            water_g = atlas[WATER, TOP, wv, wu, 1] * wl
                            water_b = atlas[WATER, TOP, wv, wu, 2] * wl
                    continue
                if in_water:
                    in_water = False
                    water_depth += t - water_in
                if cell != AIR:
                    block = cell
                    break
            if in_water:
                water_depth += min(t, max_t) - water_in
            ids[j, i] = WATER if seen_water and not eye_in_water else block  # what the eye sees first
            if block == AIR:
                if seen_water and (in_water or water_depth > 0):
                    r, g, b = water_r, water_g, water_b
                else:
                    _sky(dx, dy, dz, out, j, i)
                    continue
            else:
                hx = px + t * dx
                hy = py + t * dy
                hz = pz + t * dz
                if axis == 0:
                    u, v = hz - math.floor(hz), hy - math.floor(hy)
                    face = SIDE
                    light = FACE_LIGHT[1] if stx < 0 else FACE_LIGHT[0]
                elif axis == 1:
                    u, v = hx - math.floor(hx), hz - math.floor(hz)
                    face = TOP if sty < 0 else BOTTOM
                    light = FACE_LIGHT[3] if sty < 0 else FACE_LIGHT[2]
                else:
                    u, v = hx - math.floor(hx), hy - math.floor(hy)
                    face = SIDE
                    light = FACE_LIGHT[5] if stz < 0 else FACE_LIGHT[4]
                col = min(int(u * TEX), TEX - 1)
                row = min(int(v * TEX), TEX - 1) if face != SIDE else TEX - 1 - min(int(v * TEX), TEX - 1)
                if x == tgt_x and y == tgt_y and z == tgt_z:
                    if u < OUTLINE or u > 1 - OUTLINE or v < OUTLINE or v > 1 - OUTLINE:
                        light *= 0.2
                    elif crack_stage >= 0 and cracks[crack_stage, row, col]:
                        light *= 0.35
                r = atlas[block, face, row, col, 0] * light
                g = atlas[block, face, row, col, 1] * light
                b = atlas[block, face, row, col, 2] * light
                if water_depth > 0:
                    a = min(0.88, 0.5 + 0.07 * water_depth)
                    r = r * (1 - a) + water_r * a
                    g = g * (1 - a) + water_g * a
                    b = b * (1 - a) + water_b * a
            fog = min(max((t - fog_start) / (max_t - fog_start), 0.0), 1.0)
            if fog > 0:
                if eye_in_water:
                    fr, fg, fb = UNDERWATER_FOG[0], UNDERWATER_FOG[1], UNDERWATER_FOG[2]
                else:
                    s = math.sqrt(max(dy, 0.0))
                    fr = SKY_HORIZON[0] * (1 - s) + SKY_ZENITH[0] * s
                    fg = SKY_HORIZON[1] * (1 - s) + SKY_ZENITH[1] * s
                    fb = SKY_HORIZON[2] * (1 - s) + SKY_ZENITH[2] * s
                r = r * (1 - fog) + fr * fog
                g = g * (1 - fog) + fg * fog
                b = b * (1 - fog) + fb * fog
            out[j, i, 0] = np.uint8(min(max(r, 0.0), 255.0))
            out[j, i, 1] = np.uint8(min(max(g, 0.0), 255.0))
            out[j, i, 2] = np.uint8(min(max(b, 0.0), 255.0))
