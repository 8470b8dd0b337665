"""The heads-up text both front ends show: measured speed, what makes the frames, the input."""

from __future__ import annotations

import time
from collections import deque

from gameworld.actions import Action


class FrameTimer:
    """Frames/s over the last `window` frames and the latency of the last one."""

    def __init__(self, window: int = 20) -> None:
        self._times: deque[float] = deque(maxlen=window + 1)
        self.latency_s: float | None = None

    def reset(self) -> None:
        self._times.clear()
        self.latency_s = None

    def record(self, latency_s: float, now: float | None = None) -> None:
        """One frame was shown; making it took `latency_s`."""
        self._times.append(time.perf_counter() if now is None else now)
        self.latency_s = latency_s

    @property
    def fps(self) -> float:
        times = self._times
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])


def describe_action(action: Action | None) -> str:
    """`forward jump | camera +0.0 +1.5` (pitch, yaw in degrees)."""
    if action is None:
        return "-"
    keys = " ".join(sorted(action.keys)) or "no keys"
    if action.camera == (0.0, 0.0):
        return keys
    return f"{keys} | camera {action.camera[0]:+.1f} {action.camera[1]:+.1f}"


def hud_lines(timer: FrameTimer, action: Action | None, status: dict[str, str]) -> list[str]:
    """Lines of HUD text: speed first, then the source's own fields, then the input."""
    latency = "-" if timer.latency_s is None else f"{1000 * timer.latency_s:.0f} ms"
    lines = [f"{timer.fps:.1f} frames/s | latency {latency}"]
    lines += [f"{name}: {value}" for name, value in status.items()]
    lines.append(f"keys: {describe_action(action)}")
    return lines
