"""Shared test fixtures: small, deterministic, generic."""

import contextlib

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


# A tiny `InverseDynamicsModel` (its constructor's keyword arguments) for tests that need one quickly.
SMALL_IDM = dict(width=32, height=18, frame_channels=(8, 8, 8), pair_channels=(8, 8), hidden_size=16)


@pytest.fixture
def make_frames():
    """`make_frames(n, height=36, width=64, seed=0)` -> uint8 [n, height, width, 3]."""
    return smooth_frames


def make_model_dir(path, width: int = 64, height: int = 32, max_frames: int = 6, sink_frames: int = 0,
                   seed: int = 0, **dit_overrides):
    """Write a tiny random-weight model directory (the default tokenizer config, a 2-block DiT).

    The zero-initialised layers (adaLN-zero, output) get small random weights too, so the
    generated frames depend on the context, the noise and the actions.
    """
    import torch

    from gameworld.actions import ActionSpace
    from gameworld.modeldir import GameWorldConfig, save_model_dir
    from gameworld.models import FrameTokenizer, NextFrameDiT

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        tokenizer = FrameTokenizer.from_config("dc-f8c8").eval()
        channels, latent_h, latent_w = tokenizer.latent_shape(height, width)
        dit = {**dict(hidden_size=64, depth=2, num_heads=2, patch_size=2), **dit_overrides}
        model = NextFrameDiT(
            in_channels=channels, latent_height=latent_h, latent_width=latent_w,
            action_dim=ActionSpace.minecraft().dim, max_frames=max_frames, sink_frames=sink_frames, **dit,
        )
        with torch.no_grad():
            for param in model.parameters():
                param.add_(0.05 * torch.randn_like(param))
    config = GameWorldConfig(width=width, height=height, context_frames=max_frames)
    return save_model_dir(path, config, tokenizer, model)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random-weight model directory (64x32 frames, window 6), shared by the session."""
    return make_model_dir(tmp_path_factory.mktemp("models") / "tiny")


def write_smooth_episodes(
    folder, count: int, seed: int = 0, frames: int = 24, height: int = 32, width: int = 64
) -> None:
    """Write `count` native episodes of `smooth_frames` with varied movement and camera actions."""
    from gameworld.actions import Action
    from gameworld.data import write_episode

    rng = np.random.default_rng(seed)
    keys = ["forward", "back", "left", "right", "jump"]
    for i in range(count):
        actions = [Action.null()] + [
            Action.of(keys[rng.integers(len(keys))], camera=(0.0, float(rng.integers(-4, 5))))
            for _ in range(frames - 1)
        ]
        write_episode(folder / f"ep{i}", smooth_frames(frames, height, width, seed=seed + i), actions, fps=20)


@contextlib.contextmanager
def one_torch_thread():
    """One torch thread inside the block: tiny models only lose time to threads on a shared machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def torch_single_thread():
    """The test runs on one torch thread (see `one_torch_thread`)."""
    with one_torch_thread():
        yield


def import_script(path):
    """A script run by path (`datasets/*.py`: not a package) imported as a module, to call its main()."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
