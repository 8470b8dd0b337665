"""The pygame play loop (headless): events become actions, the environment steps, its frame is shown."""

from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import numpy as np  # noqa: E402
import pygame  # noqa: E402
import pytest  # noqa: E402

import app.play  # noqa: E402
from gameworld.actions import Action  # noqa: E402
from gameworld.ui import GameLoop, LoopConfig, split_result  # noqa: E402
from gameworld.voxel import VoxelWorld  # noqa: E402

SCALE = 2


class ColourEnv:
    """Frames of one colour that changes every step; remembers the actions it was given."""

    def __init__(self, with_info: bool = True, size: tuple[int, int] = (12, 20)):
        self.with_info, self.size, self.actions = with_info, size, []

    def frame(self) -> np.ndarray:
        k = len(self.actions)
        return np.full((*self.size, 3), (10 * k % 256, 100, 255 - 10 * k % 256), dtype=np.uint8)

    def reset(self):
        self.actions = []
        return self.frame()

    def step(self, action: Action):
        self.actions.append(action)
        return (self.frame(), {"step": len(self.actions)}) if self.with_info else self.frame()


def post(*events: pygame.event.Event) -> None:
    for event in events:
        pygame.event.post(event)


def grab_click() -> pygame.event.Event:
    return pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=(1, 1))


def screen_pixel(loop: GameLoop, x: int, y: int) -> tuple[int, int, int]:
    return tuple(loop.screen.get_at((x * SCALE, y * SCALE)))[:3]


@pytest.fixture
def loop_factory():
    loops = []

    def make(env) -> GameLoop:
        loop = GameLoop(env, LoopConfig(fps=240, scale=SCALE))
        loop.open()
        pygame.event.clear()
        loops.append(loop)
        return loop

    yield make
    pygame.quit()


@pytest.mark.parametrize("with_info", [True, False])
def test_events_drive_the_environment_and_its_frames_are_shown(loop_factory, with_info):
    env = ColourEnv(with_info)
    loop = loop_factory(env)
    assert loop.screen.get_size() == (20 * SCALE, 12 * SCALE)
    post(grab_click(), pygame.event.Event(pygame.KEYDOWN, key=pygame.K_w, mod=0))
    post(pygame.event.Event(pygame.MOUSEMOTION, rel=(20, -10), pos=(1, 1), buttons=(0, 0, 0)))
    loop.tick()
    assert env.actions == [Action(frozenset({"forward"}), (-1.5, 3.0))]
    assert screen_pixel(loop, 10, 6) == tuple(int(v) for v in env.frame()[6, 10])
    assert loop.info == ({"step": 1} if with_info else {})
    loop.tick()
    assert env.actions[-1] == Action.of("forward")
    assert screen_pixel(loop, 19, 11) == (20, 100, 235)


def test_the_hint_shows_until_the_pointer_is_grabbed(loop_factory):
    loop = loop_factory(ColourEnv())
    loop.tick()
    with_hint = pygame.surfarray.array3d(loop.screen)
    post(grab_click())
    loop.tick()
    frame_colour = np.array(screen_pixel(loop, 0, 0))
    assert (pygame.surfarray.array3d(loop.screen) == frame_colour).all()
    assert not (with_hint == with_hint[-1, -1]).all()


def test_closing_the_window_stops_without_stepping(loop_factory):
    env = ColourEnv()
    loop = loop_factory(env)
    post(pygame.event.Event(pygame.QUIT))
    loop.tick()
    assert not loop.running and env.actions == []


def test_the_voxel_game_plays_in_the_loop(loop_factory):
    loop = loop_factory(VoxelWorld(seed=0, biome="plains", width=32, height=24))
    start = loop.env.pose()
    post(grab_click(), pygame.event.Event(pygame.KEYDOWN, key=pygame.K_w, mod=0))
    for _ in range(10):
        loop.tick()
    moved = np.hypot(loop.info["pose"]["x"] - start["x"], loop.info["pose"]["z"] - start["z"])
    assert moved > 1.0 and loop.last_action.keys == {"forward"}
    shown = pygame.surfarray.array3d(loop.screen).transpose(1, 0, 2)[::SCALE, ::SCALE]
    assert np.array_equal(shown, loop.frame)


def test_run_stops_after_max_steps_and_closes_the_window():
    env = ColourEnv()
    GameLoop(env, LoopConfig(fps=240, scale=1)).run(max_steps=3)
    assert len(env.actions) == 3 and not pygame.display.get_init()


def test_bad_frames_and_settings_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        split_result(np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        split_result((np.zeros((4, 4, 3), dtype=np.float32), {}))
    with pytest.raises(ValueError, match="fps"):
        LoopConfig(fps=0)


def test_app_play_opens_the_voxel_game_with_or_without_the_flag(monkeypatch):
    opened = []
    monkeypatch.setattr(GameLoop, "run", lambda self: opened.append(self))
    app.play.main([])
    app.play.main(["--voxel", "--biome", "icy", "--seed", "3", "--size", "64x36", "--no-hud", "--scale", "2"])
    first, second = (loop.env for loop in opened)
    assert isinstance(first, VoxelWorld) and first.biome == "forest"
    assert (first.width, first.height) == (256, 144)
    assert second.biome == "icy" and second.seed == 3 and (second.width, second.height) == (64, 36)
    assert not second.hud and opened[1].config.scale == 2
    with pytest.raises(SystemExit):
        app.play.main(["--size", "huge"])
    with pytest.raises(SystemExit):
        app.play.main(["--size", "4x4"])
