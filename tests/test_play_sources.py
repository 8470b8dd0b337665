"""Frame sources: the voxel game, a world model and both side by side behind one interface,
and how the clients choose among them (the shipped default model, when there is one, plays)."""

from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import app.play  # noqa: E402
from gameworld import modeldir  # noqa: E402
from gameworld.actions import Action  # noqa: E402
from gameworld.data import write_episode  # noqa: E402
from gameworld.starts import load_image  # noqa: E402
from gameworld.ui import (  # noqa: E402
    EngineSource,
    GameLoop,
    SideBySide,
    SourceChoice,
    StartScene,
    VoxelSource,
    default_model_available,
    open_source,
    source_factory,
)
from gameworld.ui.sources import SIDE_BY_SIDE_GAP  # noqa: E402
from gameworld.voxel import VoxelWorld  # noqa: E402

ACTIONS = [Action.of("forward"), Action.of("forward", camera=(0, 4)), Action.of("jump"), Action.null()]


@pytest.fixture
def no_default_model(monkeypatch, tmp_path):
    monkeypatch.setattr(modeldir, "PACKAGED_MODELS", tmp_path / "pretrained")


@pytest.fixture
def default_model(monkeypatch, tmp_path, tiny_model_dir):
    """`gameworld/pretrained/default/` holds the tiny model."""
    (tmp_path / "pretrained").mkdir()
    (tmp_path / "pretrained" / "default").symlink_to(tiny_model_dir)
    monkeypatch.setattr(modeldir, "PACKAGED_MODELS", tmp_path / "pretrained")


def play(source, actions, scene=None):
    frame, _ = source.reset(scene)
    return [frame] + [source.step(action)[0] for action in actions]


def test_start_scenes_check_what_they_are_given(tmp_path):
    assert StartScene().kind == "voxel" and StartScene(video="x.mp4").kind == "video"
    assert StartScene(biome="icy", seed=4).meta() == {"start": "voxel", "seed": 4, "biome": "icy"}
    with pytest.raises(ValueError, match="unknown biome 'moon'"):
        StartScene(biome="moon")
    with pytest.raises(ValueError, match="uint8"):
        StartScene(image=np.zeros((4, 4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="not both"):
        StartScene(image=np.zeros((4, 4, 3), dtype=np.uint8), video="x.mp4")
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "text.png").write_text("not a picture")
    with pytest.raises(ValueError, match="text.png: not an image"):
        load_image(tmp_path / "text.png")


def test_the_voxel_source_is_the_voxel_game_and_restarts_its_scene():
    source = VoxelSource(32, 24, scene=StartScene(seed=2, biome="desert"))
    world = VoxelWorld(seed=2, biome="desert", width=32, height=24)
    expected = [world.reset()] + [world.step(a)[0] for a in ACTIONS]
    assert all(np.array_equal(a, b) for a, b in zip(play(source, ACTIONS), expected, strict=True))
    assert source.step(Action.null())[1]["pose"] == world.step(Action.null())[1]["pose"]
    again = play(source, ACTIONS)  # reset() without a scene: the same start again
    assert all(np.array_equal(a, b) for a, b in zip(again, expected, strict=True))
    assert source.meta() == {"source": "voxel", "player": "human", "hud": True, "start": "voxel", "seed": 2,
                             "biome": "desert"}
    with pytest.raises(ValueError, match="voxel game starts only from a seed and biome"):
        source.reset(StartScene(image=np.zeros((8, 8, 3), dtype=np.uint8)))
    with pytest.raises(ValueError, match="no settings"):
        source.configure(steps=2)
    with pytest.raises(RuntimeError, match="reset"):
        VoxelSource(32, 24).step(Action.null())
    with pytest.raises(ValueError, match="width"):
        VoxelSource(4, 24)


def test_the_engine_source_starts_from_a_biome_an_image_or_a_video(tiny_model_dir, tmp_path, make_frames):
    source = open_source(SourceChoice(model=str(tiny_model_dir)))
    assert isinstance(source, EngineSource) and source.label == "model tiny (cpu)"
    frames = play(source, ACTIONS, StartScene(seed=1, biome="plains"))
    assert all(f.shape == (32, 64, 3) and f.dtype == np.uint8 for f in frames)
    assert source.engine.stats.frames == len(ACTIONS)
    again = play(source, ACTIONS)  # a rollout is a function of the start, the seed and the actions
    assert all(np.array_equal(a, b) for a, b in zip(again, frames, strict=True))
    other = play(source, [Action.of("back")] + ACTIONS[1:])
    assert not np.array_equal(other[1], frames[1])  # the actions reach the model

    picture = make_frames(1, height=64, width=128)[0]
    first, _ = source.reset(StartScene(image=picture))
    assert first.shape == (32, 64, 3) and source.meta()["start"] == "image"
    assert np.abs(first.astype(int) - picture[::2, ::2].astype(int)).mean() < 12  # resized, not replaced

    clip = make_frames(5, height=32, width=64)
    write_episode(tmp_path / "start", clip, [Action.null()] + [Action.of("forward")] * 4)
    first, _ = source.reset(StartScene(video=tmp_path / "start.mp4"))
    assert source.engine.num_frames == 5  # its frames are the context
    assert np.abs(first.astype(int) - clip[-1].astype(int)).mean() < 8
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        source.reset(StartScene(video=tmp_path / "missing.mp4"))
    assert source.scene.video == tmp_path / "start.mp4"  # a start that failed changes nothing


def test_the_engine_source_reports_and_changes_its_settings(tiny_model_dir):
    source = open_source(SourceChoice(model=str(tiny_model_dir), settings={"speculative": 2}))
    source.reset()
    for _ in range(4):
        source.step(Action.of("forward"))
    status = source.status()
    assert status["steps"].startswith("4") and status["speculative"] == "2 ahead, 100% accepted"
    assert status["temperature"] == "1" and status["motion prior"] == "off"
    assert status["still frames"] == "from pure noise"
    source.configure(steps=2, speculative=0, temperature=0.9, still_level=0.3)
    assert source.settings() == {"steps": 2, "speculative": 0, "temperature": 0.9, "motion_prior": None,
                                 "still_level": 0.3}
    assert source.status()["still frames"] == "from pure noise"  # without the prior no view is still
    assert source.status()["speculative"] == "off" and source.status()["temperature"] == "0.9"
    with pytest.raises(ValueError, match="steps"):
        source.configure(steps=0)


def test_a_factorys_sources_share_the_weights_and_nothing_else(tiny_model_dir):
    make = source_factory(SourceChoice(model=str(tiny_model_dir), settings={"steps": 2}))
    first, second = make(), make()
    assert first.engine is not second.engine and first.engine.model is second.engine.model
    first.configure(steps=1)
    assert second.settings()["steps"] == 2  # one session's settings are its own
    first.reset()
    second.reset()
    for _ in range(3):
        first.step(Action.of("forward"))
    third = make()
    third.reset()
    (frame, _), (fresh, _) = second.step(Action.null()), third.step(Action.null())
    np.testing.assert_array_equal(frame, fresh)  # the first source moved alone
    with pytest.raises(ValueError, match="steps"):
        source_factory(SourceChoice(model=str(tiny_model_dir), settings={"steps": 0}))  # before any session

def test_side_by_side_plays_the_voxel_game_and_the_model_on_the_same_input(tiny_model_dir):
    pair = open_source(SourceChoice(model=str(tiny_model_dir), side_by_side=True))
    assert isinstance(pair, SideBySide)
    frames = play(pair, ACTIONS, StartScene(seed=5, biome="forest"))
    assert frames[0].shape == (32, 2 * 64 + SIDE_BY_SIDE_GAP, 3)
    world = VoxelWorld(seed=5, biome="forest", width=64, height=32)
    truth = [world.reset()] + [world.step(a)[0] for a in ACTIONS]
    alone = open_source(SourceChoice(model=str(tiny_model_dir)))
    generated = play(alone, ACTIONS, StartScene(image=truth[0]))
    for frame, left, right in zip(frames, truth, generated, strict=True):
        assert np.array_equal(frame[:, :64], left)
        assert np.array_equal(frame[:, -64:], right)
        assert not frame[:, 64 : 64 + SIDE_BY_SIDE_GAP].any()
    _, info = pair.step(Action.null())
    assert set(info["views"]) == {"voxel", "model"} and "pose" in info
    assert pair.meta()["source"] == "side-by-side" and pair.meta()["biome"] == "forest"
    with pytest.raises(ValueError, match="voxel game starts only"):
        pair.reset(StartScene(image=truth[0]))


def test_the_voxel_game_plays_until_a_default_model_ships(no_default_model):
    assert not default_model_available()
    assert SourceChoice().resolved_model() is None
    assert isinstance(open_source(SourceChoice(size=(32, 24))), VoxelSource)
    with pytest.raises(ValueError, match="side by side needs a world model"):
        SourceChoice(side_by_side=True)
    with pytest.raises(ValueError, match="apply to a world model"):
        SourceChoice(settings={"steps": 2})


def test_the_shipped_default_model_plays_when_it_exists(default_model, tiny_model_dir):
    assert default_model_available() and SourceChoice().resolved_model() == "default"
    assert SourceChoice(voxel=True).resolved_model() is None
    assert SourceChoice(model=str(tiny_model_dir)).resolved_model() == str(tiny_model_dir)
    with pytest.raises(ValueError, match="frame size is for the voxel game only"):
        SourceChoice(size=(64, 32))
    with pytest.raises(ValueError, match="excludes"):
        SourceChoice(voxel=True, side_by_side=True)
    with pytest.raises(ValueError, match="unknown engine setting"):
        open_source(SourceChoice(settings={"stepz": 2}))


def test_app_play_opens_the_default_model_a_given_model_or_both(default_model, tiny_model_dir, monkeypatch):
    opened = []
    monkeypatch.setattr(GameLoop, "run", lambda self: opened.append(self))
    app.play.main([])
    app.play.main(["--model", str(tiny_model_dir), "--side-by-side", "--steps", "2", "--smooth"])
    app.play.main(["--voxel", "--size", "32x24"])
    default, pair, voxel = (loop.env for loop in opened)
    assert isinstance(default, EngineSource) and default.name == "default"
    assert opened[0].config.scale == 16 and opened[0].config.fps == 20  # 64 pixels wide: the largest scale
    assert isinstance(pair, SideBySide) and pair.settings()["steps"] == 2 and opened[1].config.smooth
    assert isinstance(voxel, VoxelSource)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--voxel", "--image", "{model}/x.png"], "no such image"),
        (["--model", "{model}", "--video", "{model}/none.mp4"], "none.mp4: no such video"),
        (["--model", "{model}", "--size", "64x32"], "frame size is for the voxel game only"),
        (["--voxel", "--steps", "2"], "apply to a world model"),
        (["--model", "{model}", "--speculative", "-1"], "speculative"),
        (["--model", "{model}", "--temperature", "-1"], "temperature must be >= 0"),
    ],
)
def test_app_play_reports_a_bad_start_before_opening_a_window(
    tiny_model_dir, capsys, monkeypatch, argv, message
):
    monkeypatch.setattr(GameLoop, "run", lambda self: pytest.fail("the window opened"))
    with pytest.raises(SystemExit):
        app.play.main([arg.format(model=tiny_model_dir) for arg in argv])
    assert message in capsys.readouterr().err


def test_the_pygame_loop_drives_the_engine_with_real_events(tiny_model_dir):
    import pygame

    from gameworld.ui import LoopConfig

    source = open_source(SourceChoice(model=str(tiny_model_dir)))
    loop = GameLoop(source, LoopConfig(fps=240, scale=2, hud=False))
    loop.open()
    try:
        pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=(1, 1)))
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_w, mod=0))
        pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, rel=(20, 0), pos=(1, 1), buttons=(0, 0, 0)))
        shown = []
        for _ in range(3):
            loop.tick()
            shown.append(loop.frame)
        assert np.array_equal(loop.window_pixels()[::2, ::2], loop.frame)  # what the window shows
        assert "steps: 4 (euler)" in loop.hud_text() and "world: model tiny (cpu)" in loop.hud_text()
    finally:
        loop.close()
    replay = open_source(SourceChoice(model=str(tiny_model_dir)))
    expected = play(replay, [Action.of("forward", camera=(0, 3)), Action.of("forward"), Action.of("forward")])
    assert all(np.array_equal(a, b) for a, b in zip(shown, expected[1:], strict=True))
