"""The web demo's session pool (limit, idle timeout, cleanup) and its upload and settings checks."""

from __future__ import annotations

import threading
import zipfile

import pytest

from gameworld.actions import Action
from gameworld.data import open_episode, write_episode
from gameworld.ui import VoxelSource
from gameworld.ui.web import ServerFull, SessionPool, WebConfig, start_video_from_files, zip_episode


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Sources:
    """A factory of small voxel sources that remembers what it made."""

    def __init__(self) -> None:
        self.made: list[VoxelSource] = []

    def __call__(self) -> VoxelSource:
        self.made.append(VoxelSource(16, 12))
        return self.made[-1]


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def sources():
    return Sources()


@pytest.fixture
def pool(clock, sources):
    pool = SessionPool(sources, limit=2, idle_timeout_s=60, max_record_frames=10, clock=clock)
    yield pool
    pool.close_all()


def test_each_key_gets_its_own_world_up_to_the_limit(pool, sources):
    a, b = pool.open("a"), pool.open("b")
    assert a is not b and a.source is not b.source and a.directory != b.directory
    assert pool.open("a") is a and len(sources.made) == 2  # a known key is not a new world
    with pytest.raises(ServerFull, match="server is full: every seat \\(of 2\\)"):
        pool.open("c")
    assert len(pool) == 2 and pool.get("c") is None and a.recorder.max_frames == 10


def test_idle_worlds_are_closed_and_free_their_seat(pool, clock, sources):
    a = pool.open("a")
    clock.now = 30
    b = pool.open("b")
    clock.now = 70  # a: 70 s without input, b: 40 s
    assert pool.sweep() == ["a"] and pool.get("a") is None and pool.get("b") is b
    assert a.closed and not a.directory.exists()
    c = pool.open("c")  # the seat is free again
    assert c.source is sources.made[-1] and len(pool) == 2


def test_closing_waits_for_a_running_step_and_removes_the_scratch_space(pool):
    session = pool.open("a")
    frame, info = session.source.reset()
    session.recorder.start(frame, info, 20, {})
    session.lock.acquire()  # a step is running
    closer = threading.Thread(target=pool.close, args=("a",))
    closer.start()
    closer.join(timeout=0.2)
    assert closer.is_alive() and session.directory.exists()
    session.lock.release()
    closer.join(timeout=5)
    assert not closer.is_alive() and session.closed and not session.directory.exists()
    assert pool.get("a") is None


def test_an_uploaded_episode_is_gathered_under_one_stem(tmp_path, make_frames):
    source = tmp_path / "uploads"
    mp4 = write_episode(source / "a" / "run", make_frames(3), [Action.null()] * 3)
    uploads = [str(mp4), str(mp4.with_suffix(".jsonl")), str(mp4.with_suffix(".json"))]
    start = start_video_from_files(uploads, tmp_path / "session")
    assert start == tmp_path / "session" / "start" / "run.mp4" and len(open_episode(start)) == 3
    archive = zip_episode(mp4, tmp_path / "run.zip")
    assert sorted(zipfile.ZipFile(archive).namelist()) == ["run.json", "run.jsonl", "run.mp4"]
    with pytest.raises(ValueError, match=r"\['.txt'\]"):
        start_video_from_files([str(mp4), str(tmp_path / "notes.txt")], tmp_path / "session")
    with pytest.raises(ValueError, match="exactly one .mp4"):
        start_video_from_files([str(mp4.with_suffix(".jsonl"))], tmp_path / "session")


def test_web_settings_are_checked():
    assert WebConfig().host == "127.0.0.1"
    for bad in (dict(max_sessions=0), dict(idle_timeout_s=0), dict(port=70000), dict(frame_format="gif")):
        with pytest.raises(ValueError, match="WebConfig"):
            WebConfig(**bad)


def test_app_web_hands_the_sampler_settings_to_every_session(tiny_model_dir, monkeypatch, capsys):
    import app.web

    launched = []
    monkeypatch.setattr(app.web.WebDemo, "launch", lambda demo: launched.append(demo))
    app.web.main(["--model", str(tiny_model_dir), "--device", "cpu", "--steps", "1", "--temperature", "0.9"])
    settings = launched[0].pool.factory().engine.settings
    assert (settings.steps, settings.temperature) == (1, 0.9)
    with pytest.raises(SystemExit):
        app.web.main(["--model", str(tiny_model_dir), "--device", "cpu", "--temperature", "-1"])
    assert "temperature must be >= 0" in capsys.readouterr().err
    assert len(launched) == 1  # the bad start never opened a server
