"""The native episode: `<stem>.mp4` + `<stem>.jsonl` + `<stem>.json`, and the `Episode` every format opens to.

    <stem>.mp4    H.264 frames f[0..T-1]
    <stem>.jsonl  one line per frame: line t is a[t], the input that turned f[t-1] into f[t]
                  (a[0] is null); fields in `gameworld.data.action_lines`
    <stem>.json   fps, resolution, frame count, source, action space, and the caller's meta
                  (seed, biome, ...). Written last: it marks the episode complete.

Converters (VPT, GF-Minecraft, MineRL) build the same `Episode` with the same time convention,
so nothing downstream knows where an episode came from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gameworld.actions import Action, ActionSpace
from gameworld.atomic import staged, write_text_atomic
from gameworld.data.action_lines import action_to_line, line_to_action, to_json_value
from gameworld.data.errors import EpisodeError
from gameworld.data.video import decode_frames, probe_video, write_video

NATIVE_FORMAT = "gameworld.episode"
NATIVE_VERSION = 1
TIME_CONVENTION = "frames f[0..T-1] and actions a[0..T-1]; a[t] turned f[t-1] into f[t]; a[0] is null"
EPISODE_SUFFIXES = (".mp4", ".jsonl", ".json")
RESERVED_META = ("format", "version", "fps", "width", "height", "frame_count", "lossless", "codec",
                 "time_convention")


@dataclass
class Episode:
    """Frames (decoded lazily from `video_path`) and one action per frame, in gameworld's time convention.

    `frame_offset` skips leading video frames that precede f[0] (MineRL v0 recordings have them).
    """

    video_path: Path
    actions: list[Action]
    fps: float
    meta: dict = field(default_factory=dict)
    extras: list[dict] = field(default_factory=list)
    frame_offset: int = 0

    def __post_init__(self) -> None:
        self.video_path = Path(self.video_path)
        if not self.extras:
            self.extras = [{} for _ in self.actions]
        if len(self.extras) != len(self.actions):
            raise ValueError(f"{len(self.extras)} extras for {len(self.actions)} frames")

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def space(self) -> ActionSpace:
        return ActionSpace.from_dict(self.meta.get("action_space") or ActionSpace.minecraft().to_dict())

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame in order, uint8 `[H, W, 3]`."""
        yield from decode_frames(self.video_path, self.frame_offset, self.frame_offset + len(self))

    def read_frames(self, start: int, stop: int) -> np.ndarray:
        """Frames `start..stop-1` as uint8 `[n, H, W, 3]`."""
        if not 0 <= start < stop <= len(self):
            raise IndexError(f"{self.video_path}: frames [{start}, {stop}) outside an episode of {len(self)}")
        offset = self.frame_offset
        return np.stack(list(decode_frames(self.video_path, offset + start, offset + stop)))


def episode_paths(stem: str | Path) -> tuple[Path, Path, Path]:
    """(`.mp4`, `.jsonl`, `.json`) of an episode given its stem or any one of its files."""
    stem = Path(stem)
    if stem.suffix in EPISODE_SUFFIXES:
        stem = stem.with_suffix("")
    return tuple(stem.with_name(stem.name + suffix) for suffix in EPISODE_SUFFIXES)


def read_json(path: Path) -> dict:
    """A JSON object from `path`, or an `EpisodeError` naming the file."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise EpisodeError(path, "file is missing") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise EpisodeError(path, f"not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise EpisodeError(path, f"expected a JSON object, got {type(data).__name__}")
    return data


def read_jsonl(path: Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed value) for each line; blank lines are allowed only at the end."""
    try:
        handle = path.open("rb")
    except FileNotFoundError as err:
        raise EpisodeError(path, "file is missing") from err
    with handle:
        blank = None
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                blank = blank or number
                continue
            if blank is not None:
                raise EpisodeError(path, "empty line inside the file", line=blank)
            try:
                yield number, json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise EpisodeError(path, f"not valid JSON ({err})", line=number) from err


def _prepare_meta(meta: dict | None) -> tuple[dict, ActionSpace]:
    meta = dict(meta or {})
    clash = sorted(set(meta) & set(RESERVED_META))
    if clash:
        raise ValueError(f"episode meta may not set {clash}: write_episode records them itself")
    space = meta.get("action_space") or ActionSpace.minecraft()
    if isinstance(space, dict):
        space = ActionSpace.from_dict(space)
    meta["action_space"] = space.to_dict()
    meta.setdefault("source", "native")
    return meta, space


def write_episode(
    stem: str | Path,
    frames: np.ndarray | Iterable[np.ndarray],
    actions: Sequence[Action],
    *,
    fps: int = 20,
    meta: dict | None = None,
    extras: Sequence[dict] | None = None,
    lossless: bool = False,
) -> Path:
    """Write a native episode atomically and return its `.mp4` path.

    `frames` are uint8 `[H, W, 3]` (an array `[T, H, W, 3]` or any iterable, encoded as it
    streams); `actions[t]` turned frame t-1 into frame t, so `actions[0]` must be null.
    `meta` may hold `source`, `seed`, `biome`, `action_space` (an `ActionSpace` or its dict;
    default Minecraft) and anything else JSON can hold. `extras[t]` adds fields to line t
    (e.g. `{"pose": {...}}`). `lossless=True` stores frames bit-exact (libx264rgb, crf 0).
    """
    mp4, jsonl, marker = episode_paths(stem)
    actions = list(actions)
    if not actions:
        raise ValueError(f"{mp4}: an episode needs at least one frame and action")
    if not actions[0].is_null:
        raise ValueError(f"{mp4}: actions[0] must be null (it precedes the first frame), got {actions[0]}")
    extras = list(extras) if extras is not None else [{}] * len(actions)
    if len(extras) != len(actions):
        raise ValueError(f"{mp4}: {len(extras)} extras for {len(actions)} actions")
    meta, space = _prepare_meta(meta)
    for t, action in enumerate(actions):
        try:
            space.resolve(action)
        except ValueError as err:
            raise ValueError(f"{mp4}: action {t}: {err}") from err
    try:
        json.dumps(meta, default=to_json_value)
        lines = [action_to_line(action, extra) for action, extra in zip(actions, extras, strict=True)]
    except TypeError as err:
        raise ValueError(f"{mp4}: meta and extras must be JSON data ({err})") from err

    marker.unlink(missing_ok=True)  # an episode being rewritten is not complete until the end
    with staged(mp4) as tmp_mp4, staged(jsonl) as tmp_jsonl:
        try:
            info = write_video(tmp_mp4, frames, fps, lossless=lossless)
        except ValueError as err:
            raise ValueError(f"{mp4}: {err}") from err
        if info.frame_count != len(actions):
            raise ValueError(f"{mp4}: {info.frame_count} frames but {len(actions)} actions")
        tmp_jsonl.write_text("".join(line + "\n" for line in lines))
    record = {
        "format": NATIVE_FORMAT, "version": NATIVE_VERSION, "fps": fps, "width": info.width,
        "height": info.height, "frame_count": info.frame_count, "lossless": lossless, "codec": info.codec,
        "time_convention": TIME_CONVENTION, **meta,
    }
    write_text_atomic(marker, json.dumps(record, indent=2, default=to_json_value) + "\n")
    return mp4


def is_native_record(data: dict) -> bool:
    return data.get("format") == NATIVE_FORMAT


def episode_complete(stem: str | Path) -> bool:
    """True when the episode's `.json` marker (written last) is in place beside its `.mp4` and `.jsonl`."""
    mp4, jsonl, marker = episode_paths(stem)
    try:
        return is_native_record(json.loads(marker.read_text())) and mp4.is_file() and jsonl.is_file()
    except (OSError, ValueError):
        return False


def read_native(stem: str | Path) -> Episode:
    """Open a native episode, checking that its three files agree on the frame count."""
    mp4, jsonl, marker = episode_paths(stem)
    if not marker.is_file():
        raise EpisodeError(marker, "missing: the episode is incomplete (its .json is written last)")
    meta = read_json(marker)
    if not is_native_record(meta):
        raise EpisodeError(marker, f"not a gameworld episode record (format {meta.get('format')!r})")
    if meta.get("version", 0) > NATIVE_VERSION:
        raise EpisodeError(marker, f"episode format version {meta['version']} is newer than this reader")
    try:
        frame_count, fps = int(meta["frame_count"]), float(meta["fps"])
        space = ActionSpace.from_dict(meta["action_space"])
    except (KeyError, TypeError, ValueError) as err:
        raise EpisodeError(marker, f"bad episode record ({err!r})") from err
    actions, extras = [], []
    for number, line in read_jsonl(jsonl):
        try:
            action, extra = line_to_action(line)
            space.resolve(action)
        except (ValueError, TypeError) as err:
            raise EpisodeError(jsonl, str(err), line=number) from err
        actions.append(action)
        extras.append(extra)
    if len(actions) != frame_count:
        raise EpisodeError(jsonl, f"{len(actions)} lines, but {marker.name} records {frame_count} frames")
    if not mp4.is_file():
        raise EpisodeError(mp4, "file is missing")
    video_frames = probe_video(mp4).frame_count
    if video_frames != frame_count:
        raise EpisodeError(mp4, f"{video_frames} video frames, but {marker.name} records {frame_count}")
    return Episode(mp4, actions, fps, meta, extras)
