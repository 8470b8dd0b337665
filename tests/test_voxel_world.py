"""VoxelWorld: the API, determinism, bad input, physics against Minecraft's numbers, breaking and placing."""

from __future__ import annotations

import numpy as np
import pytest

from gameworld.actions import Action
from gameworld.voxel import BIOMES, VoxelConfig, VoxelWorld
from gameworld.voxel.blocks import BREAK_TICKS, block_id
from gameworld.voxel.players import ScriptedPlayer

PLATFORM_Y = 50  # a stone strip floating high above every biome's terrain
STRIP_LENGTH = 40


@pytest.fixture
def arena() -> tuple[VoxelWorld, int, int]:
    """A world with a 3-wide stone strip along +z at y=50, the player on its start facing +z."""
    world = VoxelWorld(seed=0, biome="plains", width=32, height=24, hud=False)
    world.reset()
    x0, z0 = int(np.floor(world.body.x)), int(np.floor(world.body.z))
    for x in range(x0 - 1, x0 + 2):
        for z in range(z0 - 2, z0 + STRIP_LENGTH):
            world.set_block(x, PLATFORM_Y, z, "stone")
    world.teleport(x0 + 0.5, PLATFORM_Y + 1, z0 + 0.5, yaw=0.0, pitch=0.0)
    world.step(Action.null())  # settle onto the strip
    return world, x0, z0


def hold(world: VoxelWorld, action: Action, ticks: int) -> list[dict]:
    return [world.step(action)[1] for _ in range(ticks)]


def steady_speed(world: VoxelWorld, action: Action) -> float:
    """Blocks per second along +z over ticks 40..60 of holding `action` (speed has settled by then)."""
    infos = hold(world, action, 60)
    return (infos[-1]["pose"]["z"] - infos[-21]["pose"]["z"]) / 1.0  # 20 ticks = 1 second


def test_reset_and_step_shapes_and_info():
    world = VoxelWorld(seed=1, biome="forest", width=40, height=24)
    frame = world.reset()
    assert frame.shape == (24, 40, 3) and frame.dtype == np.uint8
    frame, info = world.step(Action.of("forward"))
    assert frame.shape == (24, 40, 3)
    assert set(info["pose"]) == {"x", "y", "z", "yaw", "pitch"}
    assert isinstance(info["on_ground"], bool) and info["selected_slot"] == 1
    assert info["tick"] == 1


def test_same_seed_and_actions_give_identical_frames():
    def run(seed: int) -> list[np.ndarray]:
        world = VoxelWorld(seed=seed, biome="forest", width=48, height=32)
        player = ScriptedPlayer(seed=5)
        frames = [world.reset()]
        info = world.info()
        for _ in range(40):
            frame, info = world.step(player.act(info))
            frames.append(frame)
        return frames

    a, b = run(3), run(3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(run(4)[0], a[0])


def test_reset_restores_the_start_including_edits():
    world = VoxelWorld(seed=2, biome="plains", width=32, height=24)
    first = world.reset()
    x, y, z = (int(np.floor(v)) for v in (world.body.x, world.body.y, world.body.z))
    world.set_block(x, y - 1, z, "bricks")
    hold(world, Action.of("forward", camera=(0, 3)), 10)
    assert np.array_equal(world.reset(), first)
    assert world.block_at(x, y - 1, z) != "bricks"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"biome": "jungle"}, "unknown biome 'jungle'"),
        ({"width": 4}, "width=4"),
        ({"height": 100.5}, "height=100.5"),
        ({"seed": "zero"}, "seed must be an integer"),
    ],
)
def test_bad_constructor_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VoxelWorld(**kwargs)


def test_bad_steps_are_rejected_clearly():
    world = VoxelWorld(width=16, height=16)
    for call in (lambda: world.step(Action.null()), world.render, world.info, world.pose):
        with pytest.raises(RuntimeError, match="before reset"):
            call()
    world.reset()
    with pytest.raises(TypeError, match="expects an Action"):
        world.step({"keys": ["forward"]})
    with pytest.raises(ValueError, match="unknown key"):
        world.step(Action.of("fly"))
    with pytest.raises(ValueError, match="view_distance"):
        VoxelConfig(view_distance=500)


def test_every_biome_has_a_dry_spawn_on_the_surface():
    for biome in BIOMES:
        world = VoxelWorld(seed=0, biome=biome, width=16, height=16)
        world.reset()
        _, info = world.step(Action.null())
        x, y, z = (int(np.floor(info["pose"][k])) for k in ("x", "y", "z"))
        assert info["on_ground"] and not info["in_water"], biome
        assert world.block_at(x, y, z) == "air" and world.block_at(x, y + 1, z) == "air", biome


# -- physics -------------------------------------------------------------------------------------

def test_walk_sprint_and_sneak_speeds_match_minecraft(arena):
    world, x0, z0 = arena
    assert steady_speed(world, Action.of("forward")) == pytest.approx(4.317, rel=0.02)
    world.teleport(x0 + 0.5, PLATFORM_Y + 1, z0 + 0.5)
    assert steady_speed(world, Action.of("forward", "sprint")) == pytest.approx(5.612, rel=0.02)
    world.teleport(x0 + 0.5, PLATFORM_Y + 1, z0 + 0.5)
    assert steady_speed(world, Action.of("forward", "sneak")) == pytest.approx(1.31, rel=0.03)


def test_jump_reaches_about_one_and_a_quarter_blocks_and_lands(arena):
    world, _, _ = arena
    start = world.body.y
    heights = [i["pose"]["y"] for i in [world.step(Action.of("jump"))[1]] + hold(world, Action.null(), 20)]
    assert max(heights) - start == pytest.approx(1.25, rel=0.10)
    assert heights[-1] == pytest.approx(start) and world.body.on_ground


def test_falls_under_gravity_and_lands_on_the_surface(arena):
    world, x0, z0 = arena
    world.teleport(x0 + 0.5, PLATFORM_Y + 11, z0 + 0.5)
    ys = [i["pose"]["y"] for i in hold(world, Action.null(), 40)]
    assert ys[1] < ys[0] and all(b <= a for a, b in zip(ys, ys[1:], strict=False))
    landed = next(t for t, y in enumerate(ys) if y == pytest.approx(PLATFORM_Y + 1))
    assert 15 <= landed <= 30  # 10 blocks take ~1 s with gravity 0.08 and drag 0.98 per tick
    assert min(ys) == pytest.approx(PLATFORM_Y + 1) and world.body.on_ground


def test_cannot_walk_through_a_wall(arena):
    world, x0, z0 = arena
    wall_z = z0 + 5
    for x in range(x0 - 1, x0 + 2):
        for y in (PLATFORM_Y + 1, PLATFORM_Y + 2):
            world.set_block(x, y, wall_z, "cobblestone")
    infos = hold(world, Action.of("forward", "sprint"), 40)
    zs = [i["pose"]["z"] for i in infos]
    assert max(zs) <= wall_z - 0.3 + 1e-9
    assert zs[-1] == pytest.approx(wall_z - 0.3, abs=1e-6) and world.body.collided_horizontally


def test_a_step_needs_a_jump(arena):
    world, x0, z0 = arena
    for x in range(x0 - 1, x0 + 2):
        for z in range(z0 + 3, z0 + 12):  # a raised terrace one block up
            world.set_block(x, PLATFORM_Y + 1, z, "dirt")
    hold(world, Action.of("forward"), 30)
    assert world.body.y == PLATFORM_Y + 1 and world.body.z < z0 + 3
    hold(world, Action.of("forward", "jump"), 15)
    hold(world, Action.of("forward"), 10)
    assert world.body.y == pytest.approx(PLATFORM_Y + 2) and world.body.z > z0 + 3


def test_sneaking_stops_at_the_edge_and_walking_falls_off(arena):
    world, x0, z0 = arena
    end = z0 + STRIP_LENGTH  # the strip's last block spans z in [end - 1, end)
    world.teleport(x0 + 0.5, PLATFORM_Y + 1, end - 1.5)
    hold(world, Action.of("forward", "sneak"), 60)
    assert world.body.y == PLATFORM_Y + 1 and end - 0.1 < world.body.z < end + 0.3
    hold(world, Action.of("forward"), 20)
    assert world.body.y < PLATFORM_Y


def test_water_slows_walking(arena):
    world, x0, z0 = arena
    for x in range(x0 - 1, x0 + 2):
        for z in range(z0 - 2, z0 + STRIP_LENGTH):
            world.set_block(x, PLATFORM_Y + 1, z, "water")
    for x in (x0 - 2, x0 + 2):  # banks so the water channel is closed on the sides
        for z in range(z0 - 2, z0 + STRIP_LENGTH):
            world.set_block(x, PLATFORM_Y + 1, z, "stone")
    speed = steady_speed(world, Action.of("forward"))
    assert world.body.in_water and 0.5 < speed < 0.6 * 4.317


def test_ice_keeps_the_top_speed_but_slides(arena):
    world, x0, z0 = arena

    def slide() -> float:
        world.teleport(x0 + 0.5, PLATFORM_Y + 1, z0 + 0.5)
        hold(world, Action.of("forward"), 40)
        start = world.body.z
        hold(world, Action.null(), 30)
        return world.body.z - start

    on_stone = slide()
    for x in range(x0 - 1, x0 + 2):
        for z in range(z0 - 2, z0 + STRIP_LENGTH):
            world.set_block(x, PLATFORM_Y, z, "ice")
    on_ice = slide()
    assert 0.1 < on_stone < 0.5 and on_ice > 4 * on_stone
    world.teleport(x0 + 0.5, PLATFORM_Y + 1, z0 + 0.5)
    assert steady_speed(world, Action.of("forward")) == pytest.approx(4.317, rel=0.1)


def test_camera_turns_with_the_action_and_pitch_is_clamped(arena):
    world, _, _ = arena
    _, info = world.step(Action(camera=(30.0, 100.0)))
    assert info["pose"]["pitch"] == 30.0 and info["pose"]["yaw"] == 100.0
    _, info = world.step(Action(camera=(90.0, 100.0)))
    assert info["pose"]["pitch"] == 90.0 and info["pose"]["yaw"] == -160.0  # wrapped into [-180, 180)


# -- breaking and placing ------------------------------------------------------------------------

def test_attack_breaks_the_targeted_block_after_its_break_time(arena):
    world, x0, z0 = arena
    _, info = world.step(Action(camera=(90.0, 0.0)))  # look straight down
    below = [x0, PLATFORM_Y, z0]
    assert info["target"] == {"block": "stone", "pos": below, "face": [0, 1, 0]}
    ticks = int(BREAK_TICKS[block_id("stone")])
    infos = hold(world, Action.of("attack"), ticks)
    assert [i["broken"] for i in infos[:-1]] == [None] * (ticks - 1)
    assert infos[-1]["broken"] == "stone" and world.block_at(*below) == "air"


def test_releasing_attack_resets_the_progress(arena):
    world, x0, z0 = arena
    world.step(Action(camera=(90.0, 0.0)))
    ticks = int(BREAK_TICKS[block_id("stone")])
    for _ in range(3):
        hold(world, Action.of("attack"), ticks - 2)
        world.step(Action.null())
    assert world.block_at(x0, PLATFORM_Y, z0) == "stone"


def test_use_places_the_selected_block_on_the_face_but_never_inside_the_player(arena):
    world, x0, z0 = arena
    _, info = world.step(Action(camera=(90.0, 0.0)))
    world.step(Action.of("use"))  # the face below the feet: the new block would overlap the player
    assert world.block_at(x0, PLATFORM_Y + 1, z0) == "air"
    world.step(Action(camera=(-40.0, 0.0)))  # look down at 50 degrees: the strip two blocks ahead
    _, info = world.step(Action.of("hotbar.3"))
    assert info["selected_slot"] == 3 and info["selected_block"] == "planks"
    tx, ty, tz = info["target"]["pos"]
    _, info = world.step(Action.of("use"))
    assert info["placed"] == "planks" and world.block_at(tx, ty + 1, tz) == "planks"
    _, info = world.step(Action.null())
    assert info["target"]["pos"] == [tx, ty + 1, tz]


def test_nothing_is_targeted_beyond_reach(arena):
    world, _, _ = arena
    _, info = world.step(Action(camera=(-60.0, 0.0)))  # the sky
    assert info["target"] is None
    world.step(Action.of("use"))
    _, info = world.step(Action.of("attack"))
    assert info["placed"] is None and info["broken"] is None
