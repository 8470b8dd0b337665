"""The web demo end to end in a real headless Chromium: keys, a frame drag and a touch-pad button
reach the world, the frame on the page changes, a screenshot is taken, the biome gallery restarts."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest
from PIL import Image

from gameworld.ui import SourceChoice, source_factory
from gameworld.ui.browser import chromium_page, missing_browser_tools
from gameworld.ui.web import WebConfig, WebDemo
from gameworld.voxel import VoxelWorld

pytestmark = pytest.mark.skipif(missing_browser_tools() is not None, reason=f"{missing_browser_tools()}")

FRAME = "#gw-frame img"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def demo():
    demo = WebDemo(source_factory(SourceChoice(voxel=True, size=(128, 72))),
                   WebConfig(port=free_port(), max_sessions=1, frame_format="png"))
    demo.launch(block=False, quiet=True)
    yield demo
    demo.close()


def wait_for(condition, timeout: float = 20.0, what: str = "the page") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def recorded(demo: WebDemo) -> list:
    (session,) = demo.pool.sessions()
    return session.recorder.actions


def test_keys_drags_and_pad_buttons_drive_the_world_in_chromium(demo, tmp_path):
    with chromium_page() as page:
        page.goto(f"http://127.0.0.1:{demo.config.port}/")
        page.wait_for_selector(FRAME, timeout=60_000)  # the page starts a world on load
        first = page.get_attribute(FRAME, "src")
        page.click("h1")  # focus the page, not an input box

        page.keyboard.down("KeyW")
        wait_for(lambda: page.get_attribute(FRAME, "src") != first, what="a new frame while W is held")
        wait_for(lambda: len(recorded(demo)) >= 4, what="four frames")
        page.keyboard.up("KeyW")
        assert all(action.keys == {"forward"} for action in recorded(demo)[1:4])

        box = page.locator(FRAME).bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + 40, y - 10, steps=4)
        page.mouse.up()
        def turned() -> np.ndarray:  # (pitch, yaw) summed over the frames: a drag may span several
            return np.sum([a.camera for a in recorded(demo)], axis=0)

        wait_for(lambda: turned()[1] > 11.5, what="the camera turn of the drag")
        assert turned() == pytest.approx((-10 * 0.3, 40 * 0.3))  # 0.3 degrees per pixel, up and right

        jump = page.locator("[data-gw-key=jump]")
        jump.dispatch_event("pointerdown")
        wait_for(lambda: any("jump" in a.keys for a in recorded(demo)), what="the jump button")
        jump.dispatch_event("pointerup")

        hud = page.inner_text("#gw-hud")
        page.screenshot(path=str(tmp_path / "page.png"))
        (session,) = demo.pool.sessions()
        start = VoxelWorld(seed=0, biome="forest", width=128, height=72).reset()
        assert not np.array_equal(session.frame, start)  # the player moved

        page.locator("#gw-biomes img[alt=desert]").click()  # a biome in the gallery starts there
        wait_for(lambda: "voxel desert" in page.inner_text("#gw-hud"), what="a start in the desert")
        assert session.source.scene.biome == "desert"
        assert not any("jump" in a.keys for a in recorded(demo))  # a new recording, without the forest's
        page.focus("#gw-start")
        page.keyboard.press("Space")  # jumps: it must not click the focused Start button
        wait_for(lambda: any("jump" in a.keys for a in recorded(demo)), what="a jump in the desert")
        time.sleep(0.5)
        assert any("jump" in a.keys for a in recorded(demo))  # still the same recording: no restart
    assert "frames/s" in hud and "voxel forest" in hud
    shot = np.asarray(Image.open(tmp_path / "page.png").convert("RGB"))
    assert shot.shape == (900, 1280, 3) and shot.std() > 20  # a real page, not a blank one
