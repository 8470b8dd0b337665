"""`VoxelWorld`: the Minecraft-style game behind one `reset()` / `step(action)` interface.

One `step` is one tick (1/20 s): the camera turns, the hotbar selection changes, the targeted block
is attacked or built on, the body moves, and the new frame is rendered. Nothing is random at run
time: the same seed and the same actions give bit-identical frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gameworld.actions import Action, ActionSpace, wrap_degrees
from gameworld.voxel.blocks import AIR, BLOCKS, BREAK_TICKS, DEFAULT_HOTBAR, WATER, block_id
from gameworld.voxel.chunks import ChunkStore
from gameworld.voxel.geometry import raycast_block
from gameworld.voxel.hud import draw_crosshair, draw_hotbar
from gameworld.voxel.physics import BODY_HEIGHT, EYE_HEIGHT, HALF_WIDTH, Body, MoveInput, step_body
from gameworld.voxel.render import render
from gameworld.voxel.spawn import find_spawn
from gameworld.voxel.terrain import HEIGHT, biome_index, seed_key
from gameworld.voxel.textures import CRACK_STAGES, build_atlas, build_cracks

_SPACE = ActionSpace.minecraft()
_ATLAS = build_atlas()
_CRACKS = build_cracks()
BREAK_COOLDOWN_TICKS = 5  # Minecraft's pause after a block breaks before the next one starts
USE_REPEAT_TICKS = 4  # held `use` places again every 4 ticks, as in Minecraft


@dataclass(frozen=True)
class VoxelConfig:
    """Game and camera settings other than the frame size."""

    fov_deg: float = 70.0  # vertical field of view
    view_distance: float = 48.0  # blocks; fog reaches full strength here
    reach: float = 4.5
    window_chunks: int = 4  # chunks kept around the player's chunk for the kernels (view <= 16 * this)

    def __post_init__(self) -> None:
        if not 10.0 <= self.fov_deg <= 150.0:
            raise ValueError(f"VoxelConfig.fov_deg={self.fov_deg} must be within 10..150 degrees")
        if not 0 < self.view_distance <= 16 * self.window_chunks:
            raise ValueError(
                f"VoxelConfig.view_distance={self.view_distance} must be in (0, {16 * self.window_chunks}] "
                f"(16 x window_chunks)"
            )


class VoxelWorld:
    """A first-person voxel game. `reset() -> frame`, `step(action) -> (frame, info)`.

    Frames are `np.uint8 [height, width, 3]`. `info` holds the exact pose (feet position in blocks,
    yaw and pitch in degrees, VPT signs), `on_ground`, `in_water`, the targeted block, the selected
    hotbar slot (1..9) and what was broken or placed during the tick.
    """

    def __init__(
        self, seed: int = 0, biome: str = "forest", width: int = 256, height: int = 144, hud: bool = True,
        config: VoxelConfig | None = None,
    ):
        for name, value in (("width", width), ("height", height)):
            if not isinstance(value, (int, np.integer)) or not 8 <= value <= 4096:
                raise ValueError(f"VoxelWorld {name}={value!r} must be an integer in 8..4096")
        if not isinstance(seed, (int, np.integer)):
            raise ValueError(f"VoxelWorld seed must be an integer, got {seed!r}")
        self.seed = int(seed)
        self.biome = biome
        self.biome_id = biome_index(biome)
        self.width, self.height, self.hud = int(width), int(height), bool(hud)
        self.config = config or VoxelConfig()
        self.key = seed_key(self.seed)
        self.store: ChunkStore | None = None
        self._ids = np.zeros((self.height, self.width), dtype=np.uint8)

    # -- public API -------------------------------------------------------------------------------
    def reset(self) -> np.ndarray:
        self.store = ChunkStore(self.key, self.biome_id, self.config.window_chunks)
        x, y, z, yaw = find_spawn(self.store, self.key, self.biome_id)
        self.body = Body(x, y, z, on_ground=True)
        self.yaw, self.pitch = yaw, 0.0
        self.hotbar = [block_id(name) for name in DEFAULT_HOTBAR]
        self.selected = 0
        self.tick = 0
        self._break_pos: tuple[int, int, int] | None = None
        self._break_progress = 0
        self._break_cooldown = 0
        self._use_cooldown = 0
        self._events: dict[str, str | None] = {"broken": None, "placed": None}
        self.store.recenter(x, z)
        self._target = self._raycast()
        return self.render()

    def step(self, action: Action) -> tuple[np.ndarray, dict]:
        """One tick under `action`, then the new frame and the info of the new state."""
        info = self.advance(action)
        return self.render(), info

    def advance(self, action: Action) -> dict:
        """One tick under `action` without drawing a frame (for planning passes); returns the info."""
        self._require_reset("advance")
        if not isinstance(action, Action):
            raise TypeError(f"VoxelWorld.step expects an Action, not {type(action).__name__}")
        keys = _SPACE.resolve(action).keys
        dpitch, dyaw = action.camera
        self.pitch = min(90.0, max(-90.0, self.pitch + dpitch))
        self.yaw = wrap_degrees(self.yaw + dyaw)
        for n in range(1, 10):
            if f"hotbar.{n}" in keys:
                self.selected = n - 1
                break
        self._events = {"broken": None, "placed": None}
        self._target = self._raycast()
        if "pickItem" in keys and self._target is not None:
            picked = int(self.store.get(*self._target[:3]))
            if BLOCKS[picked].placeable:
                self.hotbar[self.selected] = picked
        self._attack("attack" in keys)
        self._use("use" in keys)
        move = MoveInput(
            forward=("forward" in keys) - ("back" in keys),
            right=("right" in keys) - ("left" in keys),
            jump="jump" in keys,
            sneak="sneak" in keys,
            sprint="sprint" in keys,
        )
        step_body(self.body, self.store.window, self.store.origin, self.yaw, move)
        self.store.recenter(self.body.x, self.body.z)
        self._target = self._raycast()
        self.tick += 1
        return self.info()

    def render(self) -> np.ndarray:
        """The current view, `np.uint8 [height, width, 3]` (a new array)."""
        self._require_reset("render")
        frame = np.empty((self.height, self.width, 3), dtype=np.uint8)
        target = np.array(self._target[:3] if self._target else (0, -1, 0), dtype=np.int64)
        block = self.store.get(*self._target[:3]) if self._target else AIR
        ticks = int(BREAK_TICKS[block])
        stage = -1
        if self._break_progress > 0 and ticks > 0:
            stage = min(CRACK_STAGES - 1, self._break_progress * CRACK_STAGES // ticks)
        render(
            self.store.window, self.store.origin[0], self.store.origin[1], self.store.top,
            self.body.x, self.body.y + EYE_HEIGHT, self.body.z, self.yaw, self.pitch,
            self.config.fov_deg, self.config.view_distance, _ATLAS, _CRACKS, target, stage, frame, self._ids,
        )
        if self.hud:
            draw_crosshair(frame)
            draw_hotbar(frame, _ATLAS, self.hotbar, self.selected)
        return frame

    def info(self) -> dict:
        self._require_reset("info")
        target = None
        if self._target is not None:
            x, y, z, nx, ny, nz = self._target
            target = {"block": BLOCKS[self.store.get(x, y, z)].name, "pos": [x, y, z], "face": [nx, ny, nz]}
        return {
            "pose": self.pose(),
            "on_ground": bool(self.body.on_ground),
            "in_water": bool(self.body.in_water),
            "target": target,
            "selected_slot": self.selected + 1,
            "selected_block": BLOCKS[self.hotbar[self.selected]].name,
            "broken": self._events["broken"],
            "placed": self._events["placed"],
            "tick": self.tick,
        }

    def pose(self) -> dict:
        self._require_reset("pose")
        b = self.body
        return {"x": b.x, "y": b.y, "z": b.z, "yaw": self.yaw, "pitch": self.pitch}

    def block_ids(self) -> np.ndarray:
        """The block id seen at every pixel of the last rendered frame (0 = sky), `uint8 [H, W]`."""
        return self._ids.copy()

    def block_at(self, x: int, y: int, z: int) -> str:
        self._require_reset("block_at")
        return BLOCKS[self.store.get(x, y, z)].name

    def set_block(self, x: int, y: int, z: int, name: str) -> None:
        self._require_reset("set_block")
        self.store.set(x, y, z, block_id(name))

    def teleport(
        self, x: float, y: float, z: float, yaw: float | None = None, pitch: float | None = None
    ) -> None:
        """Move the player (feet position) and optionally turn the camera; velocity is cleared."""
        self._require_reset("teleport")
        self.body = Body(float(x), float(y), float(z))
        if yaw is not None:
            self.yaw = float(yaw)
        if pitch is not None:
            self.pitch = min(90.0, max(-90.0, float(pitch)))
        self.store.recenter(self.body.x, self.body.z)
        self._target = self._raycast()

    # -- internals --------------------------------------------------------------------------------
    def _require_reset(self, method: str) -> None:
        if self.store is None:
            raise RuntimeError(f"VoxelWorld.{method}() called before reset()")

    def _look(self) -> tuple[float, float, float]:
        yaw, pitch = math.radians(self.yaw), math.radians(self.pitch)
        return -math.sin(yaw) * math.cos(pitch), -math.sin(pitch), math.cos(yaw) * math.cos(pitch)

    def _raycast(self) -> tuple[int, int, int, int, int, int] | None:
        dx, dy, dz = self._look()
        hit, x, y, z, nx, ny, nz, _ = raycast_block(
            self.store.window, self.store.origin[0], self.store.origin[1],
            self.body.x, self.body.y + EYE_HEIGHT, self.body.z, dx, dy, dz, self.config.reach,
        )
        return (int(x), int(y), int(z), int(nx), int(ny), int(nz)) if hit else None

    def _attack(self, held: bool) -> None:
        if self._break_cooldown > 0:
            self._break_cooldown -= 1
            return
        if not held or self._target is None:
            self._break_pos, self._break_progress = None, 0
            return
        pos = self._target[:3]
        if pos != self._break_pos:
            self._break_pos, self._break_progress = pos, 0
        self._break_progress += 1
        block = self.store.get(*pos)
        ticks = int(BREAK_TICKS[block])
        if ticks > 0 and self._break_progress >= ticks:
            self.store.set(*pos, AIR)
            self._events["broken"] = BLOCKS[block].name
            self._break_pos, self._break_progress = None, 0
            self._break_cooldown = BREAK_COOLDOWN_TICKS
            self._target = self._raycast()

    def _use(self, held: bool) -> None:
        if not held:
            self._use_cooldown = 0
            return
        if self._use_cooldown > 0:
            self._use_cooldown -= 1
            if self._use_cooldown > 0:
                return
        self._use_cooldown = USE_REPEAT_TICKS
        if self._target is None:
            return
        x, y, z, nx, ny, nz = self._target
        px, py, pz = x + nx, y + ny, z + nz
        block = self.hotbar[self.selected]
        if not 0 <= py < HEIGHT or not BLOCKS[block].placeable:
            return
        if self.store.get(px, py, pz) not in (AIR, WATER) or self._overlaps_player(px, py, pz):
            return
        self.store.set(px, py, pz, block)
        self._events["placed"] = BLOCKS[block].name
        self._target = self._raycast()

    def _overlaps_player(self, x: int, y: int, z: int) -> bool:
        b = self.body
        return (
            x < b.x + HALF_WIDTH and x + 1 > b.x - HALF_WIDTH
            and y < b.y + BODY_HEIGHT and y + 1 > b.y
            and z < b.z + HALF_WIDTH and z + 1 > b.z - HALF_WIDTH
        )
