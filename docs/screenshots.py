"""Screenshots of both front ends, taken headless by this script (no display, no hand):

    python docs/screenshots.py [--model DIR] [--out docs]

    play_voxel.png          the pygame client playing the voxel game, HUD on
    play_model.png          the pygame client playing the world model alone, HUD on (its frames/s)
    play_side_by_side.png   the pygame client with --side-by-side: voxel game left, world model right
    web.png                 the Gradio demo in headless Chromium (what `python -m app.web` serves)

The model is `--model DIR`, else the shipped default, else a random-weight `tiny` model at 256x144
(its frames are noise: the picture then shows the client, not a trained world). The web shot needs
Chromium and playwright (see gameworld/ui/browser.py); without them it is skipped with a message.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import pygame  # noqa: E402

from gameworld.ui import (  # noqa: E402
    GameLoop,
    LoopConfig,
    SourceChoice,
    StartScene,
    default_model_available,
    open_source,
    source_factory,
)
from gameworld.ui.loop import save_png  # noqa: E402

SCENE = StartScene(seed=0, biome="forest")
TICKS = 40  # frames played before each shot, at the game's 20 frames/s


def random_model_dir(directory: Path) -> Path:
    """A random-weight tiny model at the engine's default 256x144, window 16 (as eval.speed times it)."""
    from eval.speed import random_engine_parts
    from gameworld.modeldir import save_model_dir

    return save_model_dir(directory / "random-tiny", *random_engine_parts("tiny", 256, 144, 16, "dc-f8c8"))


def play_and_shoot(source, path: Path, scale: int) -> list[str]:
    """Play `source` in a pygame window (walk forward, turn right), save the window; the HUD text."""
    source.scene = SCENE
    loop = GameLoop(source, LoopConfig(fps=20, scale=scale))
    loop.open()
    try:
        pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=(1, 1)))
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_w, mod=0))
        turn = pygame.event.Event(pygame.MOUSEMOTION, rel=(6, 0), pos=(1, 1), buttons=(0, 0, 0))
        for tick in range(TICKS):
            if tick % 4 == 0:
                pygame.event.post(turn)
            loop.tick()
            loop.pace()
        save_png(path, loop.window_pixels())
        return loop.hud_text()
    finally:
        loop.close()


def web_shot(choice: SourceChoice, path: Path) -> str:
    """Serve the web demo on loopback, hold W for a second in headless Chromium, save the page."""
    from gameworld.ui.browser import chromium_page, missing_browser_tools
    from gameworld.ui.web import WebConfig, WebDemo

    reason = missing_browser_tools()
    if reason:
        return f"skipped {path.name}: {reason}"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo = WebDemo(source_factory(choice), WebConfig(port=port, frame_format="png"))
    demo.launch(block=False, quiet=True)
    try:
        with chromium_page(1280, 960) as page:
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#gw-frame img", timeout=60_000)
            page.click("h1")
            page.keyboard.down("KeyW")
            page.keyboard.down("ArrowRight")
            time.sleep(1.0)
            page.keyboard.up("ArrowRight")
            time.sleep(1.0)
            page.keyboard.up("KeyW")
            time.sleep(1.5)  # the world coasts to a stop
            page.screenshot(path=str(path))
            return f"wrote {path}: " + page.inner_text("#gw-hud").replace("\n", " | ")
    finally:
        demo.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="model directory for the side-by-side shot (default: see above)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        model = args.model or "default"
        if not args.model and not default_model_available():
            model = str(random_model_dir(Path(scratch)))
        hud = play_and_shoot(open_source(SourceChoice(voxel=True)), args.out / "play_voxel.png", scale=4)
        print(f"wrote {args.out / 'play_voxel.png'}: " + " | ".join(hud))
        alone = open_source(SourceChoice(model=model))
        hud = play_and_shoot(alone, args.out / "play_model.png", scale=4)
        print(f"wrote {args.out / 'play_model.png'}: " + " | ".join(hud))
        pair = open_source(SourceChoice(model=model, side_by_side=True))
        hud = play_and_shoot(pair, args.out / "play_side_by_side.png", scale=3)
        print(f"wrote {args.out / 'play_side_by_side.png'}: " + " | ".join(hud))
        print(web_shot(SourceChoice(model=args.model), args.out / "web.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
