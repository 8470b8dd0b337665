"""The pygame play loop (headless): events become actions, the environment steps, its frame is shown."""

from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import numpy as np  # noqa: E402
import pygame  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

import app.play  # noqa: E402
from gameworld import modeldir  # noqa: E402
from gameworld.actions import Action  # noqa: E402
from gameworld.ui import GameLoop, LoopConfig, VoxelSource, split_result  # noqa: E402
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

    def make(env, **config) -> GameLoop:
        loop = GameLoop(env, LoopConfig(**{"fps": 240, "scale": SCALE, "hud": False, **config}))
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


def test_app_play_opens_the_voxel_game_with_the_flag_or_when_no_model_ships(monkeypatch, tmp_path):
    monkeypatch.setattr(modeldir, "PACKAGED_MODELS", tmp_path / "no_models")
    opened = []
    monkeypatch.setattr(GameLoop, "run", lambda self: opened.append(self))
    app.play.main([])
    app.play.main(["--voxel", "--biome", "icy", "--seed", "3", "--size", "64x36", "--no-hud", "--scale", "2"])
    first, second = (loop.env for loop in opened)
    assert isinstance(first, VoxelSource) and first.scene.biome == "forest"
    assert (first.width, first.height) == (256, 144)
    assert opened[0].config.scale == 5  # about 1280 pixels wide
    assert second.scene.biome == "icy" and second.scene.seed == 3
    assert (second.width, second.height) == (64, 36)
    assert not second.hud and opened[1].config.scale == 2
    assert not second.world.hud and second.world.seed == 3
    with pytest.raises(SystemExit):
        app.play.main(["--size", "huge"])
    with pytest.raises(SystemExit):
        app.play.main(["--size", "4x4"])


def key_event(k: int, down: bool = True) -> pygame.event.Event:
    return pygame.event.Event(pygame.KEYDOWN if down else pygame.KEYUP, key=k, mod=0)


def test_esc_frees_the_pointer_and_a_second_esc_quits(loop_factory):
    env = ColourEnv()
    loop = loop_factory(env)
    post(grab_click())
    loop.tick()
    post(key_event(pygame.K_ESCAPE))
    loop.tick()
    assert loop.running and not loop.input.grabbed and len(env.actions) == 2
    post(key_event(pygame.K_ESCAPE))
    loop.tick()
    assert not loop.running and len(env.actions) == 2


def test_pause_stops_stepping_and_drops_the_input_made_meanwhile(loop_factory):
    env = ColourEnv()
    loop = loop_factory(env)
    post(grab_click(), key_event(pygame.K_p))
    loop.tick()
    post(pygame.event.Event(pygame.MOUSEMOTION, rel=(40, 0), pos=(1, 1), buttons=(0, 0, 0)))
    loop.tick()
    assert env.actions == [] and loop.paused
    post(key_event(pygame.K_p))
    loop.tick()
    assert env.actions == [Action.null()]  # the turn made while paused is not replayed


def test_r_resets_the_environment_and_shows_its_first_frame(loop_factory):
    env = ColourEnv()
    loop = loop_factory(env)
    for _ in range(3):
        loop.tick()
    first = env.frame()
    post(key_event(pygame.K_r))
    loop.tick()
    assert len(env.actions) == 1  # reset, then this tick's step
    assert screen_pixel(loop, 0, 11) == tuple(int(v) for v in env.frame()[0, 0])
    assert not np.array_equal(env.frame(), first)


def test_the_hud_shows_speed_keys_and_the_source_and_f1_hides_it(loop_factory):
    env = ColourEnv()
    loop = loop_factory(env, hud=True, scale=16)
    post(grab_click(), key_event(pygame.K_w), key_event(pygame.K_SPACE))
    for _ in range(3):
        loop.tick()
    text = loop.hud_text()
    assert text[0].endswith("ms") and "frames/s" in text[0] and text[-1] == "keys: forward jump"
    assert loop.timer.fps > 0
    colour = np.array(screen_pixel(loop, 19, 11))
    with_hud = loop.window_pixels()
    assert not (with_hud == colour).all()
    post(key_event(pygame.K_F1))
    loop.tick()
    assert (loop.window_pixels() == np.array(screen_pixel(loop, 19, 11))).all()


def test_f12_saves_the_window_as_shown(loop_factory, tmp_path):
    loop = GameLoop(ColourEnv(), LoopConfig(fps=240, scale=SCALE, screenshot_dir=tmp_path / "shots"))
    loop.open()
    pygame.event.clear()
    try:
        post(key_event(pygame.K_F12))
        loop.tick()
        (path,) = (tmp_path / "shots").glob("*.png")
        assert loop.saved == [path]
        saved = np.asarray(Image.open(path).convert("RGB"))
        assert saved.shape == (12 * SCALE, 20 * SCALE, 3)
        assert np.array_equal(saved, loop.window_pixels())
    finally:
        pygame.quit()


class HalvesEnv(ColourEnv):
    """Left half black, right half white: scaling shows whether pixels stay sharp."""

    def frame(self) -> np.ndarray:
        frame = np.zeros((*self.size, 3), dtype=np.uint8)
        frame[:, self.size[1] // 2 :] = 255
        return frame


@pytest.mark.parametrize("smooth", [False, True])
def test_the_frame_scales_up_sharp_or_smooth(loop_factory, smooth):
    loop = loop_factory(HalvesEnv(), smooth=smooth, scale=4)
    row = loop.window_pixels()[-2, :, 0]  # below the hint
    grey = ((row > 0) & (row < 255)).sum()
    assert (grey > 0) == smooth
    assert row[0] == 0 and row[-1] == 255
