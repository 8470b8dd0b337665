"""Player movement at 20 ticks per second with Minecraft's constants.

Per tick: jump impulse, acceleration from the movement keys, a collision-clipped move (y, then x,
then z), then gravity and friction. With Minecraft's numbers this gives walking 4.317 blocks/s,
sprinting 5.612, sneaking 1.295, and a jump apex of 1.252 blocks; on ice (slipperiness 0.98) the
player keeps about the same top speed but takes long to speed up and to stop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gameworld.voxel.blocks import ICE
from gameworld.voxel.geometry import box_collides, box_in_water, clip_move

TICKS_PER_SECOND = 20
HALF_WIDTH = 0.3  # the 0.6 x 1.8 x 0.6 collision box
BODY_HEIGHT = 1.8
EYE_HEIGHT = 1.62

GRAVITY = 0.08
AIR_DRAG = 0.98
JUMP_VELOCITY = 0.42
SPRINT_JUMP_BOOST = 0.2
WALK_SPEED = 0.1  # Minecraft's movement speed attribute
DEFAULT_SLIPPERINESS = 0.6
ICE_SLIPPERINESS = 0.98
GROUND_DRAG = 0.91  # ground friction is slipperiness x this
ACCEL_NORM = (DEFAULT_SLIPPERINESS * GROUND_DRAG) ** 3  # ground acceleration = speed x this / friction**3
AIR_ACCEL = 0.02
SPRINT_AIR_ACCEL = 0.026
AIR_FRICTION = 0.91
SPRINT_FACTOR = 1.3
SNEAK_FACTOR = 0.3
INPUT_FACTOR = 0.98
WATER_ACCEL = 0.02
WATER_FRICTION = 0.8
WATER_GRAVITY = 0.02
WATER_SWIM_UP = 0.04
WATER_EXIT_HOP = 0.3
STEP_DOWN_PROBE = 0.6  # sneaking keeps this much ground under the feet
SNEAK_PROBE_STEP = 0.05
MIN_VELOCITY = 0.003


@dataclass
class Body:
    """The player's physical state; (x, y, z) is the centre of the feet."""

    x: float
    y: float
    z: float
    vx: float = 0.0
    vy: float = 0.0
    vz: float = 0.0
    on_ground: bool = False
    in_water: bool = False
    collided_horizontally: bool = False

    def box(self, dx: float = 0.0, dy: float = 0.0, dz: float = 0.0) -> tuple[float, ...]:
        x, y, z = self.x + dx, self.y + dy, self.z + dz
        return (x - HALF_WIDTH, y, z - HALF_WIDTH, x + HALF_WIDTH, y + BODY_HEIGHT, z + HALF_WIDTH)


@dataclass(frozen=True)
class MoveInput:
    forward: float = 0.0  # +1 forward, -1 back
    right: float = 0.0  # +1 right, -1 left
    jump: bool = False
    sneak: bool = False
    sprint: bool = False


def _in_water(body: Body, grid: np.ndarray, ox: int, oz: int) -> bool:
    x0, y0, z0, x1, y1, z1 = body.box()
    return box_in_water(grid, ox, oz, x0 + 0.001, y0 + 0.4, z0 + 0.001, x1 - 0.001, y1 - 0.4, z1 - 0.001)


def _slipperiness(body: Body, grid: np.ndarray, ox: int, oz: int) -> float:
    """Slipperiness of the block under the centre of the feet (ice is slippery, the rest is not)."""
    x, y, z = int(math.floor(body.x)) - ox, int(math.floor(body.y - 0.5)), int(math.floor(body.z)) - oz
    inside = 0 <= x < grid.shape[0] and 0 <= z < grid.shape[1] and 0 <= y < grid.shape[2]
    return ICE_SLIPPERINESS if inside and grid[x, z, y] == ICE else DEFAULT_SLIPPERINESS


def _supported(body: Body, grid: np.ndarray, ox: int, oz: int, dx: float, dz: float) -> bool:
    x0, y0, z0, x1, _, z1 = body.box(dx, 0.0, dz)
    return box_collides(grid, ox, oz, x0, y0 - STEP_DOWN_PROBE, z0, x1, y0, z1)


def _toward_zero(d: float) -> float:
    if abs(d) <= SNEAK_PROBE_STEP:
        return 0.0
    return d - math.copysign(SNEAK_PROBE_STEP, d)


def _keep_on_edge(body: Body, grid, ox, oz, dx: float, dz: float) -> tuple[float, float]:
    """Sneaking: shorten the move until some ground stays under the feet (Minecraft's edge guard)."""
    while dx != 0.0 and not _supported(body, grid, ox, oz, dx, 0.0):
        dx = _toward_zero(dx)
    while dz != 0.0 and not _supported(body, grid, ox, oz, 0.0, dz):
        dz = _toward_zero(dz)
    while dx != 0.0 and dz != 0.0 and not _supported(body, grid, ox, oz, dx, dz):
        dx, dz = _toward_zero(dx), _toward_zero(dz)
    return dx, dz


def step_body(body: Body, grid: np.ndarray, origin: tuple[int, int], yaw_deg: float, move: MoveInput) -> None:
    """Advance the body by one tick in place."""
    ox, oz = origin
    body.in_water = _in_water(body, grid, ox, oz)
    sprinting = move.sprint and move.forward > 0 and not move.sneak and not body.in_water
    yaw = math.radians(yaw_deg)
    fwd_x, fwd_z = -math.sin(yaw), math.cos(yaw)
    right_x, right_z = -math.cos(yaw), -math.sin(yaw)

    if move.jump:
        if body.in_water:
            body.vy += WATER_SWIM_UP
        elif body.on_ground:
            body.vy = JUMP_VELOCITY
            if sprinting:
                body.vx += fwd_x * SPRINT_JUMP_BOOST
                body.vz += fwd_z * SPRINT_JUMP_BOOST

    if body.in_water:
        accel = WATER_ACCEL
    elif body.on_ground:
        ground_friction = _slipperiness(body, grid, ox, oz) * GROUND_DRAG
        accel = WALK_SPEED * ACCEL_NORM / ground_friction**3 * (SPRINT_FACTOR if sprinting else 1.0)
    else:
        accel = SPRINT_AIR_ACCEL if sprinting else AIR_ACCEL
    scale = (SNEAK_FACTOR if move.sneak else 1.0) * INPUT_FACTOR
    forward, right = move.forward * scale, move.right * scale
    magnitude = math.hypot(forward, right)
    if magnitude >= 1e-4:
        k = accel / max(magnitude, 1.0)
        body.vx += (fwd_x * forward + right_x * right) * k
        body.vz += (fwd_z * forward + right_z * right) * k

    dx, dy, dz = body.vx, body.vy, body.vz
    if move.sneak and body.on_ground and not body.in_water:
        dx, dz = _keep_on_edge(body, grid, ox, oz, dx, dz)
    moved_y = clip_move(grid, ox, oz, *body.box(), 1, dy)
    body.y += moved_y
    moved_x = clip_move(grid, ox, oz, *body.box(), 0, dx)
    body.x += moved_x
    moved_z = clip_move(grid, ox, oz, *body.box(), 2, dz)
    body.z += moved_z

    if dy == 0.0:  # at rest vertically (just spawned or teleported): on ground if something is right below
        x0, y0, z0, x1, _, z1 = body.box()
        body.on_ground = box_collides(grid, ox, oz, x0, y0 - 0.001, z0, x1, y0, z1)
    else:
        body.on_ground = dy < 0 and moved_y != dy
    body.collided_horizontally = moved_x != dx or moved_z != dz
    if moved_y != dy:
        body.vy = 0.0
    if moved_x != dx:
        body.vx = 0.0
    if moved_z != dz:
        body.vz = 0.0

    if body.in_water:
        body.vx *= WATER_FRICTION
        body.vz *= WATER_FRICTION
        body.vy = body.vy * WATER_FRICTION - WATER_GRAVITY
        ledge_free = not box_collides(grid, ox, oz, *body.box(body.vx, body.vy + 0.6, body.vz))
        if body.collided_horizontally and ledge_free:
            body.vy = WATER_EXIT_HOP
    else:
        body.vy = (body.vy - GRAVITY) * AIR_DRAG
        friction = _slipperiness(body, grid, ox, oz) * GROUND_DRAG if body.on_ground else AIR_FRICTION
        body.vx *= friction
        body.vz *= friction
    for name in ("vx", "vy", "vz"):
        if abs(getattr(body, name)) < MIN_VELOCITY:
            setattr(body, name, 0.0)
