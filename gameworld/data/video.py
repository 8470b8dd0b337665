"""H.264 video files through PyAV: write frames, probe, and decode a range of frames.

Every failure inside av/FFmpeg is turned into an `EpisodeError` that names the file, so a
corrupt or truncated video never surfaces as a traceback from deep inside the decoder.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from gameworld.data.errors import EpisodeError

LOSSY_CRF = 18
KEYFRAME_INTERVAL_S = 2.0


@dataclass(frozen=True)
class VideoInfo:
    frame_count: int
    fps: float
    width: int
    height: int
    codec: str


def _check_frame(frame: np.ndarray, index: int, size: tuple[int, int] | None) -> tuple[int, int]:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"frame {index}: expected uint8 [H, W, 3], got {got}")
    if size is not None and frame.shape[:2] != size:
        raise ValueError(f"frame {index}: size {frame.shape[:2]} differs from frame 0's {size}")
    return frame.shape[0], frame.shape[1]


def _add_stream(container, size: tuple[int, int], fps: float, lossless: bool, keyframe_interval: int):
    height, width = size
    if not lossless and (height % 2 or width % 2):
        raise ValueError(f"lossy H.264 (yuv420p) needs an even width and height, got {width}x{height}")
    rate = Fraction(fps).limit_denominator(1001)
    stream = container.add_stream("libx264rgb" if lossless else "libx264", rate=rate)
    stream.width, stream.height = width, height
    stream.pix_fmt = "rgb24" if lossless else "yuv420p"
    stream.options = {"crf": "0" if lossless else str(LOSSY_CRF), "g": str(keyframe_interval)}
    return stream


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    lossless: bool = False,
    keyframe_interval: int | None = None,
) -> VideoInfo:
    """Encode uint8 `[H, W, 3]` frames into an H.264 `.mp4` at `path` (written in place).

    Lossless uses libx264rgb at crf 0 (frames decode bit-exact); lossy uses libx264 yuv420p at
    crf 18, which needs an even width and height. Keyframes every `keyframe_interval` frames
    (default: every 2 s) keep seeking in `decode_frames` cheap.
    """
    interval = keyframe_interval or max(1, round(fps * KEYFRAME_INTERVAL_S))
    container = av.open(str(path), mode="w", format="mp4")
    stream = None
    size = None
    count = 0
    try:
        for frame in frames:
            size = _check_frame(frame, count, size)
            if stream is None:
                stream = _add_stream(container, size, fps, lossless, interval)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
            count += 1
        if stream is None:
            raise ValueError("an episode needs at least one frame")
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    return VideoInfo(count, float(fps), size[1], size[0], stream.codec_context.name)


def _open(path: Path):
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as err:
        raise EpisodeError(path, f"cannot open video ({err})") from err
    if not container.streams.video:
        container.close()
        raise EpisodeError(path, "file has no video stream")
    return container


def probe_video(path: str | Path, *, count: bool = False) -> VideoInfo:
    """Size, rate and frame count; the count comes from the header unless `count` (or no header count)."""
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or 0
        frames = stream.frames
        if count or frames <= 0:
            frames = sum(1 for _ in _decode(container, path, 0))
        return VideoInfo(frames, float(rate), stream.codec_context.width, stream.codec_context.height,
                         stream.codec_context.name)
    finally:
        container.close()


def _timestamp_index(stream):
    """A function pts -> frame index for a constant-rate stream, or None when timestamps are unusable."""
    rate, time_base, start = stream.average_rate, stream.time_base, stream.start_time
    if not rate or not time_base or start is None:
        return None

    def index(pts: int) -> int:
        return round(float((pts - start) * time_base * rate))

    return index


def _decode(container, path: Path, first: int) -> Iterator[tuple[int, av.VideoFrame]]:
    """(index, frame) pairs from about frame `first` on: seeks by timestamp, else decodes from frame 0."""
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    to_index = _timestamp_index(stream) if first > 0 else None
    if to_index is not None:
        target = stream.start_time + int(first / stream.average_rate / stream.time_base)
        try:
            container.seek(target, stream=stream, backward=True)
        except av.FFmpegError as err:
            raise EpisodeError(path, f"cannot seek to frame {first} ({err})") from err
    index = None
    try:
        for frame in container.decode(stream):
            if to_index is None:
                index = 0 if index is None else index + 1
            elif frame.pts is None:
                raise EpisodeError(path, f"a frame has no timestamp, so frame {first} cannot be sought")
            else:
                position = to_index(frame.pts)
                if index is None and position > first:
                    raise EpisodeError(path, f"seeking to frame {first} landed on frame {position}")
                if index is not None and position != index + 1:
                    raise EpisodeError(path, f"frame timestamps are not evenly spaced after frame {index}")
                index = position
            yield index, frame
    except av.FFmpegError as err:
        raise EpisodeError(path, f"video is corrupt after frame {index} ({err})") from err


def decode_frames(path: str | Path, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """Frames `start..stop-1` of a video as uint8 `[H, W, 3]`; a video ending before `stop` is an error."""
    path = Path(path)
    if stop is not None and stop <= start:
        return
    container = _open(path)
    try:
        next_index = start
        for index, frame in _decode(container, path, start):
            if index < start:
                continue
            if stop is not None and index >= stop:
                return
            yield frame.to_ndarray(format="rgb24")
            next_index = index + 1
        if stop is not None and next_index < stop:
            raise EpisodeError(path, f"video ends after {next_index} frames; frame {stop - 1} was asked for")
    finally:
        container.close()
