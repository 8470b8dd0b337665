"""Renderer and textures: image motion follows the camera, each biome shows its own blocks, HUD, textures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gameworld.actions import Action
from gameworld.hud import hotbar_box
from gameworld.voxel import BIOMES, VoxelWorld
from gameworld.voxel.blocks import BLOCK_IDS, BLOCKS, N_BLOCKS
from gameworld.voxel.textures import CRACK_STAGES, build_atlas, build_cracks

W, H = 96, 64


def image_shift(before: np.ndarray, after: np.ndarray) -> tuple[int, int]:
    """(dx, dy) in pixels that moves `before` onto `after`, by phase correlation of the grey images."""
    window = np.outer(np.hanning(before.shape[0]), np.hanning(before.shape[1]))
    a = np.fft.fft2(before.mean(axis=2) * window)
    b = np.fft.fft2(after.mean(axis=2) * window)
    cross = b * np.conj(a)
    peak = np.abs(np.fft.ifft2(cross / (np.abs(cross) + 1e-9)))
    dy, dx = np.unravel_index(np.argmax(peak), peak.shape)
    h, w = peak.shape
    return int(dx if dx <= w // 2 else dx - w), int(dy if dy <= h // 2 else dy - h)


def expected_pixels(degrees: float) -> float:
    """Image shift of a small camera turn near the centre: focal length (from the 70 degree FOV) x tan."""
    return (H / 2) / math.tan(math.radians(35.0)) * math.tan(math.radians(degrees))


@pytest.fixture(scope="module")
def forest() -> VoxelWorld:
    world = VoxelWorld(seed=0, biome="forest", width=W, height=H, hud=False)
    world.reset()
    world.step(Action(camera=(10.0, 0.0)))  # a little down: ground, trunks and leaves in view
    return world


def test_yaw_right_moves_the_image_left(forest):
    before = forest.render()
    after, _ = forest.step(Action(camera=(0.0, 3.0)))
    dx, dy = image_shift(before, after)
    assert dx == pytest.approx(-expected_pixels(3.0), abs=1.0) and abs(dy) <= 1
    back, _ = forest.step(Action(camera=(0.0, -3.0)))
    assert np.array_equal(back, before)


def test_pitch_down_moves_the_image_up(forest):
    before = forest.render()
    after, _ = forest.step(Action(camera=(3.0, 0.0)))
    dx, dy = image_shift(before, after)
    assert dy == pytest.approx(-expected_pixels(3.0), abs=1.0) and abs(dx) <= 1
    forest.step(Action(camera=(-3.0, 0.0)))


def test_walking_forward_changes_the_view_but_keeps_the_sky_on_top(forest):
    before = forest.render()
    after, _ = forest.step(Action.of("forward"))
    assert not np.array_equal(before, after)
    ids = forest.block_ids()
    assert ids.shape == (H, W)


def block_fractions(biome: str) -> dict[str, float]:
    """Share of non-sky pixels per block, over four views around the start looking slightly down."""
    world = VoxelWorld(seed=0, biome=biome, width=64, height=48, hud=False)
    world.reset()
    counts = np.zeros(N_BLOCKS)
    world.step(Action(camera=(20.0, 0.0)))
    for turn in range(4):
        if turn:
            world.step(Action(camera=(0.0, 90.0)))
        counts += np.bincount(world.block_ids().ravel(), minlength=N_BLOCKS)
    counts[0] = 0
    return {BLOCKS[i].name: counts[i] / counts.sum() for i in range(N_BLOCKS)}


SIGNATURES = {  # blocks each biome must show (share of visible ground) and blocks it must not
    "plains": ({"grass": 0.6}, {"sand", "snow", "mycelium"}),
    "forest": ({"grass": 0.2, "oak_leaves": 0.05, "birch_log": 0.005}, {"sand", "snow", "mycelium"}),
    "desert": ({"sand": 0.6, "cactus": 0.005}, {"grass", "snow", "water"}),
    "beach": ({"sand": 0.3, "water": 0.05}, {"snow", "mycelium"}),
    "hills": ({"grass": 0.3, "stone": 0.02}, {"sand", "mycelium"}),
    "icy": ({"snow": 0.3, "ice": 0.05, "spruce_leaves": 0.01}, {"grass", "sand", "water"}),
    "mushroom": ({"mycelium": 0.4, "red_mushroom_block": 0.01, "mushroom_stem": 0.005}, {"grass", "snow"}),
    "river": ({"grass": 0.3, "water": 0.02, "sand": 0.02}, {"snow", "mycelium"}),
}


@pytest.fixture(scope="module")
def fractions() -> dict[str, dict[str, float]]:
    return {biome: block_fractions(biome) for biome in BIOMES}


@pytest.mark.parametrize("biome", BIOMES)
def test_every_biome_renders_its_own_block_mix(biome, fractions):
    present, absent = SIGNATURES[biome]
    seen = fractions[biome]
    for block, share in present.items():
        assert seen[block] >= share, f"{biome}: {block} covers {seen[block]:.3f} < {share}"
    for block in absent:
        assert seen[block] == 0, f"{biome}: shows {block} ({seen[block]:.3f})"


def test_biome_mixes_differ_pairwise(fractions):
    names = list(BLOCK_IDS)
    vectors = {b: np.array([fractions[b][n] for n in names]) for b in BIOMES}
    for i, a in enumerate(BIOMES):
        for b in BIOMES[i + 1 :]:
            assert np.abs(vectors[a] - vectors[b]).sum() > 0.2, (a, b)


def test_hud_draws_crosshair_and_hotbar_only_when_enabled():
    plain = VoxelWorld(seed=0, biome="plains", width=128, height=72, hud=False)
    with_hud = VoxelWorld(seed=0, biome="plains", width=128, height=72, hud=True)
    a, b = plain.reset(), with_hud.reset()
    differs = np.any(a != b, axis=2)
    assert differs[36, 64]  # the crosshair inverts the centre
    assert np.array_equal(b[36, 64], 255 - a[36, 64])
    assert differs[-8:, :].sum() > 200 and not differs[:30, :].any()  # the hotbar sits at the bottom
    top, bottom, left, right = hotbar_box(128, 72)
    differs[30:43, 58:71] = False  # the crosshair
    rows, columns = np.nonzero(differs)
    assert (rows.min(), rows.max() + 1, columns.min(), columns.max() + 1) == (top, bottom, left, right)
    _, info = with_hud.step(Action.of("hotbar.5"))
    moved = np.any(with_hud.render() != b, axis=2)
    assert info["selected_slot"] == 5 and moved[-10:, :].any()


def test_breaking_shows_cracks_on_the_targeted_block():
    world = VoxelWorld(seed=0, biome="plains", width=64, height=48, hud=False)
    world.reset()
    intact, _ = world.step(Action(camera=(60.0, 0.0)))
    cracked, info = world.step(Action.of("attack"))
    for _ in range(6):
        cracked, info = world.step(Action.of("attack"))
    assert info["target"] is not None and info["broken"] is None
    assert (np.abs(cracked.astype(int) - intact.astype(int)).sum(axis=2) > 30).sum() > 5


def test_atlas_has_distinct_textured_blocks():
    atlas = build_atlas()
    assert atlas.shape == (N_BLOCKS, 3, 16, 16, 3) and atlas.dtype == np.uint8
    assert np.array_equal(atlas, build_atlas())  # procedural but fixed
    solid = atlas[1:].astype(np.float64)
    assert len(solid) >= 14
    assert all(face.std() > 2.0 for block in solid for face in block)  # every face has texture
    means = solid.mean(axis=(1, 2, 3))
    for i in range(len(solid)):
        for j in range(i + 1, len(solid)):
            a, b = BLOCKS[i + 1].name, BLOCKS[j + 1].name
            assert np.abs(solid[i] - solid[j]).mean() > 10, (a, b)
            assert np.linalg.norm(means[i] - means[j]) > 5, (a, b)


def test_crack_stages_grow():
    cracks = build_cracks()
    assert cracks.shape == (CRACK_STAGES, 16, 16)
    counts = cracks.reshape(CRACK_STAGES, -1).sum(axis=1)
    assert counts[0] > 0 and np.all(np.diff(counts) > 0)
    assert np.all(cracks[1:] >= cracks[:-1])
