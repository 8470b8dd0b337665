"""Shared test fixtures: small, deterministic, generic."""

import numpy as np
import pytest


def smooth_frames(n: int, height: int = 36, width: int = 64, seed: int = 0) -> np.ndarray:
    """uint8 [n, height, width, 3]: a smooth colour field that drifts by a few pixels per frame.

    Smooth content keeps lossy H.264 error small, and every frame differs from the others.
    """
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, size=3)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    frames = []
    for t in range(n):
        channels = [
            127.5 + 100 * np.sin((xx + 3 * t) / 9.0 + phase[0]) * np.cos(yy / 11.0),
            127.5 + 100 * np.cos((yy + 2 * t) / 7.0 + phase[1]),
            127.5 + 100 * np.sin((xx + yy - 4 * t) / 13.0 + phase[2]),
        ]
        frames.append(np.stack(channels, axis=-1))
    return np.clip(np.rint(np.stack(frames)), 0, 255).astype(np.uint8)


@pytest.fixture
def make_frames():
    """`make_frames(n, height=36, width=64, seed=0)` -> uint8 [n, height, width, 3]."""
    return smooth_frames
