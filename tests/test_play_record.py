"""Recording a session: native episodes the data tools open unchanged, one per reset (and per view)."""

from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import numpy as np  # noqa: E402
import pygame  # noqa: E402
import pytest  # noqa: E402

import app.play  # noqa: E402
from gameworld.actions import Action  # noqa: E402
from gameworld.data import open_episode  # noqa: E402
from gameworld.ui import (  # noqa: E402
    GameLoop,
    LoopConfig,
    SessionRecorder,
    SourceChoice,
    StartScene,
    open_source,
)


def key(k: int, down: bool = True) -> pygame.event.Event:
    return pygame.event.Event(pygame.KEYDOWN if down else pygame.KEYUP, key=k, mod=0)


def played(loop: GameLoop, ticks: int) -> tuple[list[np.ndarray], list[Action], list[dict]]:
    frames, actions, infos = [loop.frame], [Action.null()], [loop.info]
    for _ in range(ticks):
        loop.tick()
        frames.append(loop.frame)
        actions.append(loop.last_action)
        infos.append(loop.info)
    return frames, actions, infos


def check_episode(path, frames, actions, tolerance: float = 12.0):
    """The episode at `path` holds `actions` and (H.264 is lossy) frames near `frames`, in order."""
    episode = open_episode(path)
    assert episode.actions == actions
    decoded = np.stack(list(episode.frames())).astype(int)
    frames = np.stack(frames).astype(int)
    assert decoded.shape == frames.shape
    errors = np.abs(decoded[:, None] - frames[None]).mean(axis=(2, 3, 4))  # [decoded, recorded]
    assert errors.diagonal().max() < tolerance
    if len(frames) > 1 and len(np.unique(frames, axis=0)) == len(frames):
        assert (errors.argmin(axis=1) == np.arange(len(frames))).all()
    return episode


def test_a_voxel_session_is_recorded_as_one_episode_per_reset(tmp_path):
    source = open_source(SourceChoice(voxel=True, size=(64, 48)))
    source.scene = StartScene(seed=3, biome="plains")
    loop = GameLoop(source, LoopConfig(fps=240, scale=1, hud=False), recorder=SessionRecorder(tmp_path))
    loop.open()
    try:
        pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=(1, 1)))
        pygame.event.post(key(pygame.K_w))
        first = played(loop, 6)
        pygame.event.post(key(pygame.K_r))
        pygame.event.post(key(pygame.K_w, down=False))
        loop.tick()  # saves the first episode, resets, then steps once
        second = ([source.reset()[0]], [Action.null()], [])  # the same start again
        second[0].append(loop.frame)
        second[1].append(loop.last_action)
    finally:
        loop.close()
    paths = sorted(tmp_path.glob("*.mp4"))
    assert [p.name for p in paths] == ["session-0001.mp4", "session-0002.mp4"] and loop.saved[-2:] == paths
    assert not list(tmp_path.glob(".recording-*"))  # scratch files are gone
    episode = check_episode(paths[0], first[0], first[1])
    assert [extra["pose"] for extra in episode.extras] == [info["pose"] for info in first[2]]
    assert episode.actions[1].keys == {"forward"} and episode.fps == 20
    assert {k: episode.meta[k] for k in ("source", "biome", "seed", "start", "player")} == {
        "source": "voxel", "biome": "plains", "seed": 3, "start": "voxel", "player": "human"}
    check_episode(paths[1], *second[:2])


def test_side_by_side_records_each_view_with_the_same_actions(tiny_model_dir, tmp_path):
    pair = open_source(SourceChoice(model=str(tiny_model_dir), side_by_side=True))
    recorder = SessionRecorder(tmp_path, prefix="duel")
    frame, info = pair.reset(StartScene(seed=1, biome="forest"))
    recorder.start(frame, info, pair.fps, pair.meta())
    views = {name: [view] for name, view in info["views"].items()}
    actions = [Action.null(), Action.of("forward"), Action.of("left", camera=(1.5, -3.0))]
    for action in actions[1:]:
        frame, info = pair.step(action)
        assert recorder.add(action, frame, info)
        for name, view in info["views"].items():
            views[name].append(view)
    paths = recorder.save()
    recorder.close()
    assert [p.name for p in paths] == ["duel-0001-voxel.mp4", "duel-0001-model.mp4"]
    voxel = check_episode(paths[0], views["voxel"], actions)
    model = check_episode(paths[1], views["model"], actions, tolerance=40.0)  # noise: hard to encode
    assert voxel.meta["view"] == "voxel" and model.meta["view"] == "model"
    assert model.meta["model"] == "tiny" and "pose" in model.extras[1]


def test_the_recorder_refuses_what_it_cannot_write(tmp_path):
    recorder = SessionRecorder(tmp_path, max_frames=3)
    frame = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(RuntimeError, match="start"):
        recorder.add(Action.null(), frame, {})
    with pytest.raises(ValueError, match="even frame width and height"):
        recorder.start(np.zeros((7, 8, 3), dtype=np.uint8), {}, 20, {})
    recorder.start(frame, {}, 20, {})
    assert recorder.add(Action.of("jump"), frame, {}) and recorder.add(Action.of("jump"), frame, {})
    assert recorder.full and not recorder.add(Action.of("jump"), frame, {}) and recorder.frames == 3
    recorder.close()
    recorder.start(frame, {"views": {"a": frame, "b": frame}}, 20, {})
    with pytest.raises(ValueError, match="recording is uint8"):
        recorder.add(Action.null(), frame, {"views": {"a": frame, "b": frame[:, :6]}})
    with pytest.raises(ValueError, match="differ from the recording"):
        recorder.add(Action.null(), frame, {})
    assert recorder.frames == 1  # nothing of a refused frame was kept
    assert [p.name for p in recorder.save()] == ["session-0001-a.mp4", "session-0001-b.mp4"]
    assert all(len(open_episode(p)) == 1 for p in tmp_path.glob("*.mp4"))
    recorder.close()


def test_app_play_record_writes_the_session(tmp_path, monkeypatch):
    run = GameLoop.run
    monkeypatch.setattr(GameLoop, "run", lambda self: run(self, max_steps=4))
    app.play.main(["--voxel", "--size", "32x24", "--record", str(tmp_path / "rec"), "--fps", "240"])
    (path,) = (tmp_path / "rec").glob("*.mp4")
    episode = open_episode(path)
    assert len(episode) == 5 and episode.actions == [Action.null()] * 5
