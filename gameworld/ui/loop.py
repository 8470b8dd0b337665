"""The pygame window: read input, step the environment, show the frame, at a fixed rate.

Any object with `reset() -> frame` and `step(action) -> frame` (or `(frame, info)`) can be played;
a `FrameSource` (the voxel game, a world model, or both side by side) also fills the HUD. Frames
are `np.uint8 [H, W, 3]`. Keys of the client itself: Esc frees the pointer (a second Esc quits),
F1 toggles the HUD, P pauses, R resets, F12 saves a screenshot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pygame
from PIL import Image

from gameworld.actions import Action
from gameworld.atomic import staged
from gameworld.ui.hud import FrameTimer, hud_lines
from gameworld.ui.input import InputConfig, InputMapper
from gameworld.ui.recorder import SessionRecorder
from gameworld.ui.sources import FrameSource

HINT = "click to play - Esc frees the mouse, Esc again quits"
PAUSED = "paused - P resumes"
NOTICE_S = 3.0  # how long a notice ("saved ...") stays on screen


class Playable(Protocol):
    def reset(self) -> Any: ...
    def step(self, action: Action) -> Any: ...


def split_result(result: Any) -> tuple[np.ndarray, dict]:
    """`frame` or `(frame, info)` -> `(frame, info)`, checking the frame."""
    frame, info = result if isinstance(result, tuple) else (result, {})
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"the environment gave a frame of {frame.dtype} {frame.shape}; need uint8 [H, W, 3]")
    return frame, dict(info or {})


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Write uint8 [H, W, 3] as a PNG atomically."""
    path = Path(path)
    with staged(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return path


@dataclass(frozen=True)
class LoopConfig:
    fps: float = 20.0
    scale: int = 3  # window pixels per frame pixel
    title: str = "gameworld"
    smooth: bool = False  # scale the frame up smoothly instead of with sharp (nearest) pixels
    hud: bool = True  # show frames/s, latency, settings and keys (F1 toggles)
    screenshot_dir: Path = Path("screenshots")

    def __post_init__(self) -> None:
        if not 0 < self.fps <= 240 or not 1 <= self.scale <= 16:
            raise ValueError(f"LoopConfig needs 0 < fps <= 240 and 1 <= scale <= 16, got {self}")


class GameLoop:
    """One window playing one environment. `run()` plays until the window closes."""

    def __init__(
        self, env: Playable, config: LoopConfig | None = None, input_config: InputConfig | None = None,
        recorder: SessionRecorder | None = None,
    ):
        self.env = env
        self.config = config or LoopConfig()
        self.input = InputMapper(input_config)
        self.recorder = recorder
        self.frame: np.ndarray | None = None
        self.info: dict = {}
        self.last_action: Action | None = None
        self.running = False
        self.paused = False
        self.show_hud = self.config.hud
        self.timer = FrameTimer()
        self.saved: list[Path] = []  # episodes and screenshots written so far
        self.screen: pygame.Surface | None = None
        self._font: pygame.font.Font | None = None
        self._clock = pygame.time.Clock()
        self._notice: tuple[str, float] | None = None

    def open(self) -> None:
        pygame.display.init()  # display and font only: the client makes no sound
        pygame.font.init()
        self._reset_env()
        h, w = self.frame.shape[:2]
        self.screen = pygame.display.set_mode((w * self.config.scale, h * self.config.scale))
        pygame.display.set_caption(self.config.title)
        self._font = pygame.font.Font(None, max(16, min(26, self.screen.get_height() // 24)))
        self.running = True
        self.show()

    def close(self) -> None:
        """Save the recording (if any) and close the window."""
        try:
            self._save_recording()
        finally:
            if self.recorder is not None:
                self.recorder.close()
            pygame.quit()

    def tick(self) -> None:
        """Handle pending events, step once with the resulting action, and show the new frame."""
        screenshot = False
        for event in pygame.event.get():
            if event.type == pygame.QUIT or (
                event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE and not self.input.grabbed
            ):
                self.running = False
                return
            if event.type == pygame.KEYDOWN and event.key == pygame.K_F1:
                self.show_hud = not self.show_hud
            elif event.type == pygame.KEYDOWN and event.key == pygame.K_p:
                self.paused = not self.paused
                self.timer.reset()
            elif event.type == pygame.KEYDOWN and event.key == pygame.K_r:
                self._save_recording()
                self._reset_env()
            elif event.type == pygame.KEYDOWN and event.key == pygame.K_F12:
                screenshot = True
            else:
                self.input.handle(event)
        action = self.input.action()  # consumed even while paused: no motion piles up
        if not self.paused:
            self._step(action)
        self.show()
        if screenshot:
            self.notify(f"saved {self.screenshot()}")

    def _step(self, action: Action) -> None:
        start = time.perf_counter()
        self.frame, self.info = split_result(self.env.step(action))
        self.timer.record(time.perf_counter() - start)
        self.last_action = action
        if self.recorder is not None and not self.recorder.add(action, self.frame, self.info):
            self.notify(f"recording full ({self.recorder.frames} frames): R saves it and starts anew")

    def _reset_env(self) -> None:
        self.frame, self.info = split_result(self.env.reset())
        self.timer.reset()
        self.last_action = None
        if self.recorder is not None:
            source = self.env if isinstance(self.env, FrameSource) else None
            fps = source.fps if source else self.config.fps
            self.recorder.start(self.frame, self.info, fps, source.meta() if source else {})

    def _save_recording(self) -> None:
        if self.recorder is not None and self.recorder.frames:
            paths = self.recorder.save()
            self.saved += paths
            self.notify("saved " + ", ".join(p.name for p in paths))

    def notify(self, text: str) -> None:
        """Show `text` at the bottom of the window for a few seconds."""
        self._notice = (text, time.monotonic() + NOTICE_S)

    def screenshot(self) -> Path:
        """Save the window as shown (HUD included) under `screenshot_dir` as a PNG."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        path = save_png(self.config.screenshot_dir / f"gameworld-{stamp}.png", self.window_pixels())
        self.saved.append(path)
        return path

    def window_pixels(self) -> np.ndarray:
        """The window's pixels, uint8 [height, width, 3]."""
        return pygame.surfarray.array3d(self.screen).transpose(1, 0, 2).copy()

    def hud_text(self) -> list[str]:
        status = self.env.status() if isinstance(self.env, FrameSource) else {}
        if self.recorder is not None:
            status = {**status, "recording": f"{self.recorder.frames} frames to {self.recorder.directory}"}
        return hud_lines(self.timer, self.last_action, status)

    def show(self) -> None:
        h, w = self.frame.shape[:2]
        image = pygame.image.frombuffer(np.ascontiguousarray(self.frame).tobytes(), (w, h), "RGB")
        resize = pygame.transform.smoothscale if self.config.smooth else pygame.transform.scale
        self.screen.blit(resize(image, self.screen.get_size()), (0, 0))
        top = self._draw_lines(self.hud_text(), 0) if self.show_hud else 0
        if self.paused:
            top = self._draw_lines([PAUSED], top)
        if not self.input.grabbed:
            self._draw_lines([HINT], top)
        if self._notice is not None:
            text, until = self._notice
            if time.monotonic() < until:
                self._draw_lines([text], self.screen.get_height() - self._font.get_linesize() - 8)
            else:
                self._notice = None
        pygame.display.flip()

    def _draw_lines(self, lines: list[str], top: int) -> int:
        """White text on a dark translucent box from `top`; the y below it."""
        rendered = [self._font.render(line, True, (255, 255, 255)) for line in lines]
        width = max(text.get_width() for text in rendered) + 12
        height = sum(text.get_height() for text in rendered) + 8
        box = pygame.Surface((width, height), pygame.SRCALPHA)
        box.fill((0, 0, 0, 160))
        self.screen.blit(box, (4, top + 4))
        y = top + 8
        for text in rendered:
            self.screen.blit(text, (10, y))
            y += text.get_height()
        return top + height + 4

    def pace(self) -> None:
        """Wait until the next tick is due (at `config.fps`)."""
        self._clock.tick(self.config.fps)

    def run(self, max_steps: int | None = None) -> None:
        self.open()
        try:
            steps = 0
            while self.running and (max_steps is None or steps < max_steps):
                self.tick()
                steps += 1
                if steps % 20 == 0:
                    pygame.display.set_caption(f"{self.config.title} - {self.timer.fps:.1f} frames/s")
                self.pace()
        finally:
            self.close()
