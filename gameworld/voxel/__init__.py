"""The Minecraft-style voxel game: terrain, physics, renderer, HUD and scripted players."""

from gameworld.voxel.terrain import BIOMES
from gameworld.voxel.world import VoxelConfig, VoxelWorld

__all__ = ["BIOMES", "VoxelConfig", "VoxelWorld"]
