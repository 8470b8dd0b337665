"""The Minecraft-style voxel game: terrain, physics, renderer, HUD and scripted players.

    from gameworld.voxel import VoxelWorld, BIOMES
    world = VoxelWorld(seed=0, biome="forest", width=256, height=144)
    frame = world.reset()                    # np.uint8 [H, W, 3]
    frame, info = world.step(action)         # info["pose"] = dict(x, y, z, yaw, pitch)
"""

from gameworld.voxel.players import PlayerConfig, ScriptedPlayer, gameworld_score_actions
from gameworld.voxel.terrain import BIOMES
from gameworld.voxel.world import VoxelConfig, VoxelWorld

__all__ = ["BIOMES", "PlayerConfig", "ScriptedPlayer", "VoxelConfig", "VoxelWorld", "gameworld_score_actions"]
