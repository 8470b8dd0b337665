"""Which format an episode path is in, and `open_episode` / `find_episodes` over all of them.

| format         | files                                                   | path to give                   |
|----------------|---------------------------------------------------------|--------------------------------|
| `native`       | `<stem>.mp4` + `<stem>.jsonl` + `<stem>.json`           | the stem or any of the files   |
| `vpt`          | `<stem>.mp4` + `<stem>.jsonl` (no native `.json`)       | the stem or either file        |
| `gf-minecraft` | `<root>/video/<name>.mp4` + `<root>/metadata/<name>.json` | either file                  |
| `minerl-v0`    | `<dir>/recording.mp4` + `<dir>/rendered.npz`            | the directory or either file   |
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from gameworld.data.episode import Episode, episode_paths, is_native_record, read_native
from gameworld.data.errors import EpisodeError
from gameworld.data.gf_minecraft import gf_paths, read_gf_minecraft
from gameworld.data.minerl import read_minerl_v0
from gameworld.data.vpt import read_vpt

MINERL_FILES = ("recording.mp4", "rendered.npz")


def _json_object(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _first_line_is_native(jsonl: Path) -> bool:
    try:
        with jsonl.open("rb") as handle:
            line = json.loads(handle.readline())
    except (OSError, ValueError):
        return False
    return isinstance(line, dict) and "keys" in line and "camera" in line


def detect_format(path: str | Path) -> tuple[str, Path]:
    """(format name, the path its reader takes) for any path naming an episode."""
    path = Path(path)
    if path.is_dir() or path.name in MINERL_FILES:
        directory = path if path.is_dir() else path.parent
        if all((directory / name).is_file() for name in MINERL_FILES):
            return "minerl-v0", directory
        if path.is_dir():
            raise EpisodeError(path, "a directory is one episode only as a MineRL v0 recording "
                                     "(recording.mp4 + rendered.npz); use find_episodes() for a data set")
    mp4, jsonl, marker = episode_paths(path)
    record = _json_object(marker) if marker.is_file() else None
    if record is not None and is_native_record(record):
        return "native", marker
    if path.parent.name in ("video", "metadata"):
        video, metadata = gf_paths(path)
        if video.is_file() and metadata.is_file():
            return "gf-minecraft", metadata
    if mp4.is_file() and jsonl.is_file():
        if _first_line_is_native(jsonl):
            if marker.is_file():
                return "native", marker  # a damaged .json: its reader says what is wrong
            raise EpisodeError(marker, "missing: an unfinished native episode (its .json is written last)")
        return "vpt", jsonl
    raise EpisodeError(path, "no episode here: expected native (.mp4 + .jsonl + .json), VPT (.mp4 + .jsonl), "
                             "GF-Minecraft (video/ + metadata/) or MineRL v0 (recording.mp4 + rendered.npz)")


READERS: dict[str, Callable[[Path], Episode]] = {
    "native": read_native,
    "vpt": lambda jsonl: read_vpt(jsonl.with_suffix(".mp4"), jsonl),
    "gf-minecraft": read_gf_minecraft,
    "minerl-v0": read_minerl_v0,
}


def open_episode(path: str | Path, format: str | None = None) -> Episode:
    """Open an episode in any supported format; `format` skips detection (see the table above)."""
    if format is None:
        format, path = detect_format(path)
    if format not in READERS:
        raise ValueError(f"unknown episode format {format!r}; known: {sorted(READERS)}")
    return READERS[format](Path(path))


def find_episodes(root: str | Path) -> list[Path]:
    """Every complete episode under `root` (recursively), as paths `open_episode` takes, sorted.

    Unfinished native episodes (no `.json` yet) are left out.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory")
    found = set()
    for npz in root.rglob("rendered.npz"):
        if (npz.parent / "recording.mp4").is_file():
            found.add(npz.parent)
    for marker in root.rglob("*.json"):
        record = _json_object(marker)
        if record is None:
            continue
        is_gf_clip = marker.parent.name == "metadata" and "actions" in record and gf_paths(marker)[0].exists()
        if is_native_record(record) or is_gf_clip:
            found.add(marker)
    for jsonl in root.rglob("*.jsonl"):
        mp4, _, marker = episode_paths(jsonl)
        if mp4.is_file() and not marker.is_file() and not _first_line_is_native(jsonl):
            found.add(jsonl)
    return sorted(found)
