"""The web demo on loopback, driven through its API with `gradio_client`, as a browser tab would."""

from __future__ import annotations

import json
import socket
import zipfile

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from gameworld.actions import Action
from gameworld.data import open_episode, write_episode
from gameworld.data.video import probe_video
from gameworld.ui import SourceChoice, source_factory
from gameworld.ui.web import WebConfig, WebDemo
from gameworld.voxel import VoxelWorld

SIZE = (64, 36)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(choice: SourceChoice, **config):
    demo = WebDemo(source_factory(choice), WebConfig(port=free_port(), frame_format="png", **config))
    demo.launch(block=False, quiet=True)
    return demo


@pytest.fixture(scope="module")
def voxel_server():
    demo = serve(SourceChoice(voxel=True, size=SIZE), max_sessions=2, coast_frames=2)
    yield demo
    demo.close()


@pytest.fixture(scope="module")
def tabs(voxel_server):
    """Three browser sessions (clients) of the voxel server, made once: each is a session hash."""
    return [client(voxel_server) for _ in range(3)]


@pytest.fixture
def voxel_demo(voxel_server):
    """The voxel server, every seat free again after the test."""
    yield voxel_server
    voxel_server.pool.close_all()


@pytest.fixture
def model_demo(tiny_model_dir):
    demo = serve(SourceChoice(model=str(tiny_model_dir)), max_sessions=1)
    yield demo
    demo.close()


def client(demo: WebDemo) -> Client:
    return Client(f"http://127.0.0.1:{demo.config.port}/", verbose=False)


def image(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def step(c: Client, action: Action):
    return c.predict(json.dumps(action.to_dict()), api_name="/step")


def test_the_server_listens_on_loopback_only(voxel_demo):
    assert voxel_demo.config.host == "127.0.0.1" and voxel_demo.blocks.share is False
    assert voxel_demo.blocks.server_name == "127.0.0.1"


def test_a_session_plays_the_voxel_game_and_downloads_it(voxel_demo, tabs, tmp_path):
    c = tabs[0]
    first, hud, status, _ = c.predict("biome", "plains", 3, None, None, api_name="/start")
    world = VoxelWorld(seed=3, biome="plains", width=SIZE[0], height=SIZE[1])
    assert np.array_equal(image(first), world.reset()) and "voxel plains (seed 3)" in status
    actions = [Action.of("forward", "sprint"), Action.of("forward", "back", "jump", camera=(2, -5)),
               Action.of("left", camera=(0, 10))]
    for action in actions:
        frame, hud = step(c, action)
        assert np.array_equal(image(frame), world.step(action)[0])  # exactly the game's frame
    assert "keys: left | camera +0.0 +10.0" in hud and "recording: 4 frames" in hud

    archive = zipfile.ZipFile(c.predict(api_name="/download_episode"))
    archive.extractall(tmp_path)
    episode = open_episode(tmp_path / "gameworld-session.mp4")
    resolved = [Action.of("forward", "sprint"), Action.of("jump", camera=(2, -5)), actions[2]]
    assert episode.actions == [Action.null(), *resolved]  # what the world received: forward+back cancel
    assert episode.meta["biome"] == "plains" and episode.meta["seed"] == 3
    assert [e["pose"] for e in episode.extras][-1] == world.pose()
    video = c.predict(api_name="/download_video")
    assert video.endswith(".mp4") and probe_video(video).frame_count == 4


def test_the_world_coasts_briefly_after_input_then_waits(voxel_demo, tabs):
    c = tabs[0]
    c.predict("biome", "forest", 0, None, None, api_name="/start")
    idle = step(c, Action.null())
    assert idle == ({"__type__": "update"}, {"__type__": "update"})  # no input yet: nothing to draw
    step(c, Action.of("jump"))
    coasting = [step(c, Action.null()) for _ in range(3)]
    assert [isinstance(frame, str) for frame, _ in coasting] == [True, True, False]  # coast_frames=2


def test_two_sessions_never_share_a_world_and_a_third_is_told_the_server_is_full(voxel_demo, tabs):
    a, b, c = tabs
    frame_a = image(a.predict("biome", "desert", 1, None, None, api_name="/start")[0])
    frame_b = image(b.predict("biome", "icy", 1, None, None, api_name="/start")[0])
    assert not np.array_equal(frame_a, frame_b)
    for _ in range(3):
        step(b, Action.of("forward"))
    _, hud_a = step(a, Action.of("jump"))
    assert "recording: 2 frames" in hud_a and "desert" in hud_a  # b's steps are not in a's world
    frame, _, status, _ = c.predict("biome", "plains", 0, None, None, api_name="/start")
    assert frame is None and "server is full" in status
    assert step(c, Action.of("forward"))[1].startswith("No world is running")


def test_bad_requests_get_clear_errors(voxel_demo, tabs):
    c = tabs[1]
    c.predict("biome", "forest", 0, None, None, api_name="/start")
    with pytest.raises(AppError, match="bad action 'not json'"):
        c.predict("not json", api_name="/step")
    with pytest.raises(AppError, match="unknown key name"):
        step(c, Action.of("fly"))
    with pytest.raises(AppError, match="not in the list of choices"):  # the voxel game starts from a biome
        c.predict("image", "forest", 0, None, None, api_name="/start")
    with pytest.raises(AppError, match="no generation settings"):
        c.predict(2, 1, 1.0, 0, 0, api_name="/configure")


def test_a_model_session_starts_from_an_image_or_an_episode_and_changes_its_settings(
    model_demo, tmp_path, make_frames
):
    (tmp_path / "bad.mp4").write_text("not a video")
    first_tab = client(model_demo)
    with pytest.raises(AppError, match="bad.mp4"):
        first_tab.predict("video", "forest", 0, None, [handle_file(str(tmp_path / "bad.mp4"))],
                          api_name="/start")
    assert len(model_demo.pool) == 0  # a world that never started gives its seat back (the limit is 1)

    c = client(model_demo)
    picture = make_frames(1, height=64, width=128)[0]
    Image.fromarray(picture).save(tmp_path / "start.png")
    first, _, status, _ = c.predict("image", "forest", 0, handle_file(str(tmp_path / "start.png")), None,
                                    api_name="/start")
    assert image(first).shape == (32, 64, 3) and "model tiny (cpu)" in status
    frame, hud = step(c, Action.of("forward"))
    assert image(frame).shape == (32, 64, 3) and "steps: 4" in hud and "temperature: 1" in hud
    hud = c.predict(2, 1, 0.9, 0, 0.3, api_name="/configure")
    assert "steps: 2" in hud and "speculative: 1 ahead" in hud and "temperature: 0.9" in hud
    assert "motion prior: off" in hud and "still frames: from pure noise" in hud  # no prior: none still
    with pytest.raises(AppError, match="less than minimum value 0"):  # the slider's own check
        c.predict(2, 1, -0.5, 0, 0, api_name="/configure")
    with pytest.raises(AppError, match="this model has no motion_prior.json"):
        c.predict(2, 1, 0.9, 0.5, 0, api_name="/configure")
    for _ in range(3):
        _, hud = step(c, Action.of("forward"))
    assert "100% accepted" in hud

    clip = make_frames(4, height=32, width=64)
    mp4 = write_episode(tmp_path / "ep" / "clip", clip, [Action.null()] + [Action.of("left")] * 3)
    files = [handle_file(str(mp4.with_suffix(s))) for s in (".mp4", ".jsonl", ".json")]
    first, _, status, _ = c.predict("video", "forest", 0, None, files, api_name="/start")
    assert np.abs(image(first).astype(int) - clip[-1].astype(int)).mean() < 8  # starts at its last frame
    with pytest.raises(AppError, match="choose an image"):
        c.predict("image", "forest", 0, None, None, api_name="/start")
