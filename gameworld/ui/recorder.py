"""Record a play session as native episodes (mp4 + jsonl + json) that the data tools read unchanged.

Frames stream into a raw scratch file beside the output, so a long session costs disk, not
memory; `save` encodes what was recorded so far with `write_episode` and recording goes on. Side
by side (`info["views"]`), each view becomes an episode of its own with the same actions, so the
model's frames can be scored against the voxel game's.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gameworld.actions import Action
from gameworld.data import write_episode

MAIN_VIEW = ""  # the name of the only view of a source that is not side by side


@dataclass
class _Track:
    """The raw frames of one view, appended to a scratch file."""

    path: Path
    shape: tuple[int, int, int]
    handle: object = field(repr=False)

    def frames(self, count: int) -> Iterator[np.ndarray]:
        self.handle.flush()
        size = int(np.prod(self.shape))
        with self.path.open("rb") as reader:
            for _ in range(count):
                yield np.frombuffer(reader.read(size), dtype=np.uint8).reshape(self.shape)


def views_of(frame: np.ndarray, info: dict) -> dict[str, np.ndarray]:
    return info.get("views") or {MAIN_VIEW: frame}


class SessionRecorder:
    """`start` at each reset, `add` after each step, `save` to write; `close` removes the scratch files.

    `max_frames` caps one recording (`add` then returns False and `full` is set).
    """

    def __init__(self, directory: str | Path, prefix: str = "session", max_frames: int | None = None):
        self.directory = Path(directory)
        self.prefix = prefix
        self.max_frames = max_frames
        self.fps = 20.0
        self.meta: dict = {}
        self.actions: list[Action] = []
        self.extras: list[dict] = []
        self._tracks: dict[str, _Track] = {}

    @property
    def frames(self) -> int:
        return len(self.actions)

    @property
    def full(self) -> bool:
        return self.max_frames is not None and self.frames >= self.max_frames

    def start(self, frame: np.ndarray, info: dict, fps: float, meta: dict) -> None:
        """Begin a new recording at `frame` (what was recorded before is dropped: `save` it first)."""
        views = views_of(frame, info)
        for name, view in views.items():
            height, width = view.shape[:2]
            if height % 2 or width % 2:
                raise ValueError(
                    f"recording needs an even frame width and height (H.264), the {name or 'frame'} is "
                    f"{width}x{height}"
                )
        self.close()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fps, self.meta = fps, dict(meta)
        self.actions, self.extras = [], []
        for name, view in views.items():
            handle, path = tempfile.mkstemp(dir=self.directory, prefix=".recording-", suffix=".raw")
            self._tracks[name] = _Track(Path(path), view.shape, os.fdopen(handle, "wb"))  # closed by close()
        self._append(Action.null(), frame, info)

    def add(self, action: Action, frame: np.ndarray, info: dict) -> bool:
        """Append the frame `action` made; False (and nothing kept) once the recording is full."""
        if not self._tracks:
            raise RuntimeError("call start() before add()")
        if self.full:
            return False
        self._append(action, frame, info)
        return True

    def _append(self, action: Action, frame: np.ndarray, info: dict) -> None:
        views = views_of(frame, info)
        if views.keys() != self._tracks.keys():
            raise ValueError(f"views {sorted(views)} differ from the recording's {sorted(self._tracks)}")
        for name, view in views.items():
            shape = self._tracks[name].shape
            if view.shape != shape or view.dtype != np.uint8:
                raise ValueError(f"frame {view.dtype} {view.shape}: the recording is uint8 {shape}")
        for name, view in views.items():
            self._tracks[name].handle.write(np.ascontiguousarray(view).tobytes())
        self.actions.append(action)
        self.extras.append({"pose": info["pose"]} if "pose" in info else {})

    def next_stem(self) -> Path:
        """`<directory>/<prefix>-NNNN`, the first number no episode in the directory uses."""
        number = 1
        while any(self.directory.glob(f"{self.prefix}-{number:04d}*.json")):
            number += 1
        return self.directory / f"{self.prefix}-{number:04d}"

    def save(self, stem: str | Path | None = None) -> list[Path]:
        """Write what was recorded as episode(s) at `stem` (default `next_stem()`); their `.mp4` paths.

        Side by side, the views go to `<stem>-voxel` and `<stem>-model`.
        """
        if not self._tracks:
            return []
        stem = Path(stem) if stem is not None else self.next_stem()
        written = []
        for name, track in self._tracks.items():
            target = stem.with_name(f"{stem.name}-{name}") if name else stem
            meta = {**self.meta, "view": name} if name else self.meta
            written.append(write_episode(target, track.frames(self.frames), self.actions, fps=round(self.fps),
                                         meta=meta, extras=self.extras))
        return written

    def close(self) -> None:
        """Delete the scratch files (the saved episodes stay)."""
        for track in self._tracks.values():
            track.handle.close()
            track.path.unlink(missing_ok=True)
        self._tracks = {}
