"""The pygame window: read input, step the environment, show the frame, at a fixed rate.

Any object with `reset() -> frame` and `step(action) -> frame` (or `(frame, info)`) can be played:
the voxel game today, the world-model engine later. Frames are `np.uint8 [H, W, 3]`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pygame

from gameworld.actions import Action
from gameworld.ui.input import InputConfig, InputMapper

HINT = "click to play - Esc frees the mouse"


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


@dataclass(frozen=True)
class LoopConfig:
    fps: float = 20.0
    scale: int = 3  # window pixels per frame pixel
    title: str = "gameworld"

    def __post_init__(self) -> None:
        if not 0 < self.fps <= 240 or not 1 <= self.scale <= 16:
            raise ValueError(f"LoopConfig needs 0 < fps <= 240 and 1 <= scale <= 16, got {self}")


class GameLoop:
    """One window playing one environment. `run()` plays until the window closes."""

    def __init__(
        self, env: Playable, config: LoopConfig | None = None, input_config: InputConfig | None = None
    ):
        self.env = env
        self.config = config or LoopConfig()
        self.input = InputMapper(input_config)
        self.frame: np.ndarray | None = None
        self.info: dict = {}
        self.last_action: Action | None = None
        self.running = False
        self.screen: pygame.Surface | None = None
        self._font: pygame.font.Font | None = None
        self._clock = pygame.time.Clock()
        self._tick_times: list[float] = []

    def open(self) -> None:
        pygame.display.init()  # display and font only: the client makes no sound
        pygame.font.init()
        self.frame, self.info = split_result(self.env.reset())
        h, w = self.frame.shape[:2]
        self.screen = pygame.display.set_mode((w * self.config.scale, h * self.config.scale))
        pygame.display.set_caption(self.config.title)
        self._font = pygame.font.Font(None, max(16, 8 * self.config.scale))
        self.running = True
        self.show()

    def tick(self) -> None:
        """Handle pending events, step once with the resulting action, and show the new frame."""
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                self.running = False
                return
            self.input.handle(event)
        self.last_action = self.input.action()
        self.frame, self.info = split_result(self.env.step(self.last_action))
        self.show()
        self._tick_times = (self._tick_times + [time.perf_counter()])[-21:]

    def show(self) -> None:
        h, w = self.frame.shape[:2]
        image = pygame.image.frombuffer(np.ascontiguousarray(self.frame).tobytes(), (w, h), "RGB")
        self.screen.blit(pygame.transform.scale(image, self.screen.get_size()), (0, 0))
        if not self.input.grabbed:
            text = self._font.render(HINT, True, (255, 255, 255), (0, 0, 0))
            self.screen.blit(text, (8, 8))
        pygame.display.flip()

    def measured_fps(self) -> float:
        times = self._tick_times
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0

    def run(self, max_steps: int | None = None) -> None:
        self.open()
        try:
            steps = 0
            while self.running and (max_steps is None or steps < max_steps):
                self.tick()
                steps += 1
                if steps % 20 == 0:
                    pygame.display.set_caption(f"{self.config.title} - {self.measured_fps():.1f} fps")
                self._clock.tick(self.config.fps)
        finally:
            pygame.quit()
