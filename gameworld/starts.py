"""Where a rollout starts: an image, or the first frames of an episode or a plain video, fitted to
a model's frame size. `WorldEngine.reset`, the front ends and `eval.score --start-from` read them."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from gameworld.actions import Action

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def load_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as uint8 [H, W, 3] (any format Pillow reads; alpha is dropped)."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: not an image Pillow can read ({err})") from None


def fit_frames(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 [T, H, W, 3] -> [T, height, width, 3]: centre-crop to the aspect ratio, then resize."""
    count, h, w, _ = frames.shape
    if (h, w) == (height, width):
        return frames
    crop_w, crop_h = min(w, round(h * width / height)), min(h, round(w * height / width))
    left, top = (w - crop_w) // 2, (h - crop_h) // 2
    box = (left, top, left + crop_w, top + crop_h)
    return np.stack([
        np.asarray(Image.fromarray(f).resize((width, height), Image.Resampling.BILINEAR, box=box))
        for f in frames
    ])


def read_start_video(path: str | os.PathLike, count: int) -> tuple[np.ndarray, list[Action] | None]:
    """The first `count` frames of an episode (any format `open_episode` reads, with its actions)
    or of a plain video file (no actions)."""
    from gameworld.data import EpisodeError, detect_format, open_episode
    from gameworld.data.video import decode_frames

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such video or episode")
    try:
        detect_format(path)
    except EpisodeError:
        if not path.is_file():
            raise
        frames = list(itertools.islice(decode_frames(path), count))
        if not frames:
            raise ValueError(f"{path}: the video has no frames") from None
        return np.stack(frames), None
    episode = open_episode(path)
    stop = min(count, len(episode))
    return episode.read_frames(0, stop), episode.actions[:stop]


def read_start(path: str | os.PathLike, count: int) -> tuple[np.ndarray, list[Action] | None]:
    """An image file (one frame [1, H, W, 3], no actions) by its suffix, else the first `count`
    frames of an episode or video (`read_start_video`)."""
    if Path(path).suffix.lower() in IMAGE_SUFFIXES:
        return load_image(path)[None], None
    return read_start_video(path, count)
