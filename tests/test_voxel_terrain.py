"""Terrain: pure function of the seed, seamless across chunks, infinite, edits kept while the player roams."""

from __future__ import annotations

import numpy as np
import pytest

from gameworld.voxel.blocks import BLOCK_IDS
from gameworld.voxel.chunks import ChunkStore
from gameworld.voxel.terrain import (
    BIOMES,
    CHUNK,
    FOREST,
    HEIGHT,
    MUSHROOM,
    SEA,
    biome_index,
    generate_chunk,
    seed_key,
    surface_height,
)

LOGS = {BLOCK_IDS[n] for n in ("oak_log", "birch_log", "spruce_log", "mushroom_stem")}
CROWNS = {BLOCK_IDS[n] for n in ("oak_leaves", "spruce_leaves", "red_mushroom_block", "brown_mushroom_block")}


def in_centre(x: int, z: int) -> bool:
    return CHUNK <= x < 2 * CHUNK and CHUNK <= z < 2 * CHUNK


def region(key: int, biome: int, cx: int, cz: int, radius: int = 1) -> np.ndarray:
    """Chunks (cx +- radius, cz +- radius) stitched together: [X, Z, Y]."""
    span = range(-radius, radius + 1)
    rows = [np.concatenate([generate_chunk(key, biome, cx + i, cz + j) for j in span], axis=1) for i in span]
    return np.concatenate(rows, axis=0)


def test_chunks_are_a_pure_function_of_seed_biome_and_position():
    key = seed_key(7)
    a = generate_chunk(key, FOREST, 3, -2)
    assert a.shape == (CHUNK, CHUNK, HEIGHT) and a.dtype == np.uint8
    generate_chunk(key, FOREST, 0, 0)  # generating others in between changes nothing
    assert np.array_equal(a, generate_chunk(key, FOREST, 3, -2))
    assert not np.array_equal(a, generate_chunk(seed_key(8), FOREST, 3, -2))
    assert not np.array_equal(a, generate_chunk(key, FOREST, 4, -2))


def test_seed_key_fits_the_jit_hash():
    for seed in (0, 1, -5, 2**40, 2**63 - 1):
        assert 0 <= seed_key(seed) < 2**31


@pytest.mark.parametrize("biome", [FOREST, MUSHROOM])
def test_trees_cross_chunk_borders_whole(biome):
    """Every crown block (leaves, mushroom caps) in the centre chunk has a trunk within 3 blocks, and
    every tree standing just outside the centre chunk has its crown drawn inside it."""
    orphans_checked = crowns_checked = 0
    for seed in range(1, 7):
        blocks = region(seed_key(seed), biome, 0, 0)
        trunks = np.isin(blocks, list(LOGS)).any(axis=2)  # [X, Z]: columns with a trunk
        crown_columns = np.isin(blocks, list(CROWNS)).any(axis=2)
        for x, z in np.argwhere(crown_columns[CHUNK : 2 * CHUNK, CHUNK : 2 * CHUNK]) + CHUNK:
            assert trunks[x - 3 : x + 4, z - 3 : z + 4].any(), (seed, x, z)
            orphans_checked += 1
        for x, z in np.argwhere(trunks[2:-2, 2:-2]) + 2:
            for dx, dz in ((1, 0), (2, 0), (-1, 0), (-2, 0), (0, 1), (0, 2), (0, -1), (0, -2)):
                nx, nz = x + dx, z + dz
                if in_centre(nx, nz) and not in_centre(x, z):
                    assert crown_columns[nx, nz] or trunks[nx, nz], (seed, x, z, nx, nz)
                    crowns_checked += 1
    assert orphans_checked > 50 and crowns_checked > 0


def test_surface_follows_the_height_field_and_bedrock_floors_the_world():
    key = seed_key(3)
    for name in BIOMES:
        biome = biome_index(name)
        chunk = generate_chunk(key, biome, 1, 1)
        assert np.all(chunk[:, :, 0] == BLOCK_IDS["bedrock"])
        for lx, lz in ((0, 0), (7, 9), (15, 15)):
            h = surface_height(key, biome, CHUNK + lx, CHUNK + lz)
            assert chunk[lx, lz, h] not in (BLOCK_IDS["air"], BLOCK_IDS["water"]), name
            assert chunk[lx, lz, max(h, SEA) + 1 :].tolist().count(BLOCK_IDS["water"]) == 0, name


def test_far_away_chunks_exist():
    chunk = generate_chunk(seed_key(0), FOREST, 100_000, -100_000)
    assert np.all(chunk[:, :, 0] == BLOCK_IDS["bedrock"]) and (chunk[:, :, SEA] != 0).any()


def test_window_follows_the_player_and_keeps_edits():
    store = ChunkStore(seed_key(0), FOREST, radius=2)
    store.recenter(0.0, 0.0)
    store.set(5, 40, 5, BLOCK_IDS["bricks"])
    assert store.window[5 - store.origin[0], 5 - store.origin[1], 40] == BLOCK_IDS["bricks"]
    assert store.top >= 41
    store.recenter(5000.0, 5000.0)  # far away: unedited chunks near the start are forgotten
    assert (0, 0) in store.chunks and (1, 1) not in store.chunks
    store.recenter(0.0, 0.0)
    assert store.get(5, 40, 5) == BLOCK_IDS["bricks"]
    assert np.array_equal(store.chunk(1, 1), generate_chunk(seed_key(0), FOREST, 1, 1))


def test_bad_names_and_positions_are_reported():
    with pytest.raises(ValueError, match="unknown biome 'swamp'"):
        biome_index("swamp")
    store = ChunkStore(seed_key(0), FOREST, radius=1)
    with pytest.raises(ValueError, match="outside the world"):
        store.set(0, HEIGHT, 0, 1)
