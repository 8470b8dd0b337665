"""Block types of the voxel game: ids, names, how long they take to break, what can be placed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Block:
    name: str
    solid: bool = True
    break_ticks: int = 10  # ticks of held `attack` to break it; 0 = unbreakable
    placeable: bool = True


# The order fixes the ids (the index); id 0 is air. Break times are those of a player holding the
# right tool, shortened so that play and scripted mining stay lively.
BLOCKS: tuple[Block, ...] = (
    Block("air", solid=False, break_ticks=0, placeable=False),
    Block("grass", break_ticks=9),
    Block("dirt", break_ticks=8),
    Block("stone", break_ticks=24),
    Block("cobblestone", break_ticks=26),
    Block("sand", break_ticks=8),
    Block("sandstone", break_ticks=16),
    Block("gravel", break_ticks=9),
    Block("water", solid=False, break_ticks=0, placeable=False),
    Block("ice", break_ticks=10),
    Block("snow", break_ticks=6),
    Block("oak_log", break_ticks=20),
    Block("oak_leaves", break_ticks=4),
    Block("birch_log", break_ticks=20),
    Block("spruce_log", break_ticks=20),
    Block("spruce_leaves", break_ticks=4),
    Block("planks", break_ticks=20),
    Block("mycelium", break_ticks=9),
    Block("mushroom_stem", break_ticks=6),
    Block("red_mushroom_block", break_ticks=6),
    Block("brown_mushroom_block", break_ticks=6),
    Block("cactus", break_ticks=6),
    Block("coal_ore", break_ticks=30),
    Block("iron_ore", break_ticks=34),
    Block("bricks", break_ticks=28),
    Block("bedrock", break_ticks=0, placeable=False),
)
BLOCK_IDS: dict[str, int] = {b.name: i for i, b in enumerate(BLOCKS)}
N_BLOCKS = len(BLOCKS)

AIR = BLOCK_IDS["air"]
WATER = BLOCK_IDS["water"]
ICE = BLOCK_IDS["ice"]

# Lookup tables for the JIT kernels (index by block id).
SOLID = np.array([b.solid for b in BLOCKS], dtype=np.bool_)
BREAK_TICKS = np.array([b.break_ticks for b in BLOCKS], dtype=np.int32)

# The hotbar the player starts with (creative-style: unlimited blocks, breaking does not collect).
DEFAULT_HOTBAR: tuple[str, ...] = (
    "dirt", "cobblestone", "planks", "oak_log", "stone", "sand", "bricks", "oak_leaves", "snow",
)


def block_id(name: str) -> int:
    try:
        return BLOCK_IDS[name]
    except KeyError:
        raise ValueError(f"unknown block {name!r}; known: {list(BLOCK_IDS)}") from None
