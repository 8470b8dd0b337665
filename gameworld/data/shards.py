"""Latent shards: frames already encoded by the tokenizer, one safetensors file per shard.

A shard holds N rows, one per frame:

    latents        float16 [N, C, h, w]  tokenizer latents
    actions        float32 [N, A]        `space.encode` of each frame's action a[t]
    episode_index  int64   [N]           which episode (an id unique across the data set)
    frame_index    int64   [N]           t within that episode

plus a JSON `meta` (action space, tokenizer, fps, ...) in the safetensors header. The rows of an
episode are consecutive with `frame_index` rising by one, and may run on into the next shard
in sorted file order; `ShardSet` reads a directory of shards as one sequence of rows.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from gameworld.atomic import staged
from gameworld.data.action_lines import to_json_value
from gameworld.data.errors import EpisodeError

SHARD_FORMAT = "gameworld.latent_shard"
SHARD_SUFFIX = ".safetensors"
TENSORS = ("latents", "actions", "episode_index", "frame_index")


@dataclass
class LatentShard:
    latents: torch.Tensor  # [N, C, h, w] float16
    actions: torch.Tensor  # [N, A] float32
    episode_index: torch.Tensor  # [N] int64
    frame_index: torch.Tensor  # [N] int64
    meta: dict

    def __len__(self) -> int:
        return len(self.frame_index)


def _as_tensor(name: str, value, ndim: int, dtype: torch.dtype, n: int | None) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value)
    if tensor.ndim != ndim:
        raise ValueError(f"shard {name} must have {ndim} dimensions, got shape {tuple(tensor.shape)}")
    if n is not None and len(tensor) != n:
        raise ValueError(f"shard {name} has {len(tensor)} rows, latents {n}")
    kind = "floating point" if dtype.is_floating_point else "integer"
    if tensor.dtype.is_floating_point != dtype.is_floating_point or tensor.dtype == torch.bool:
        raise ValueError(f"shard {name} must be {kind}, got {tensor.dtype}")
    return tensor.detach().cpu().to(dtype).contiguous()


def write_shard(
    path: str | Path,
    latents: torch.Tensor,
    actions: torch.Tensor,
    episode_index: torch.Tensor,
    frame_index: torch.Tensor,
    meta: dict,
) -> Path:
    """Write one shard atomically; latents are stored as float16, actions float32, indices int64.

    `meta` should hold `action_space` (the dict of the space that encoded `actions`), which
    `ClipDataset` checks; anything else JSON can hold (tokenizer, fps, ...) may join it.
    """
    path = Path(path)
    latents = _as_tensor("latents", latents, 4, torch.float16, None)
    n = len(latents)
    tensors = {
        "latents": latents,
        "actions": _as_tensor("actions", actions, 2, torch.float32, n),
        "episode_index": _as_tensor("episode_index", episode_index, 1, torch.int64, n),
        "frame_index": _as_tensor("frame_index", frame_index, 1, torch.int64, n),
    }
    header = {"format": SHARD_FORMAT, "meta": json.dumps(meta, default=to_json_value)}
    with staged(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    return path


def _open(path: Path):
    try:
        handle = safe_open(str(path), framework="pt")
    except (SafetensorError, OSError) as err:
        raise EpisodeError(path, f"cannot read the safetensors file ({err})") from err
    header = handle.metadata() or {}
    if header.get("format") != SHARD_FORMAT:
        raise EpisodeError(path, "not a gameworld latent shard (no format marker in its header)")
    missing = sorted(set(TENSORS) - set(handle.keys()))
    if missing:
        raise EpisodeError(path, f"shard lacks the tensors {missing}")
    return handle, header


def read_shard_meta(path: str | Path) -> dict:
    path = Path(path)
    _, header = _open(path)
    try:
        return json.loads(header["meta"])
    except (KeyError, ValueError) as err:
        raise EpisodeError(path, f"shard meta is not valid JSON ({err!r})") from err


def read_shard(path: str | Path) -> LatentShard:
    """A whole shard in memory, with its row counts checked."""
    path = Path(path)
    handle, _ = _open(path)
    tensors = {name: handle.get_tensor(name) for name in TENSORS}
    n = len(tensors["frame_index"])
    uneven = {name: len(t) for name, t in tensors.items() if len(t) != n}
    if uneven:
        raise EpisodeError(path, f"tensors disagree on the row count: {uneven} vs frame_index {n}")
    return LatentShard(**tensors, meta=read_shard_meta(path))


class ShardSet:
    """The shards of a directory as one sequence of rows, read lazily (only indices are held in memory)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.paths = sorted(self.directory.glob(f"*{SHARD_SUFFIX}"))
        if not self.paths:
            raise FileNotFoundError(f"{self.directory}: no *{SHARD_SUFFIX} latent shards")
        self.meta = read_shard_meta(self.paths[0])
        self.latent_shape = None  # [C, h, w]
        self.action_dim = None
        episodes, frames = [], []
        for path in self.paths:
            episode_index, frame_index = self._load_index(path)
            episodes.append(episode_index)
            frames.append(frame_index)
        self.episode_index = torch.cat(episodes)  # [rows]
        self.frame_index = torch.cat(frames)  # [rows]
        self.offsets = np.cumsum([0, *(len(f) for f in frames)]).tolist()

    def _load_index(self, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
        """A shard's episode and frame indices, after checking it agrees with the first shard."""
        meta = read_shard_meta(path)
        if meta.get("action_space") != self.meta.get("action_space"):
            raise EpisodeError(path, f"action space differs from {self.paths[0].name}'s")
        made_by, first_made_by = meta.get("tokenizer_fingerprint"), self.meta.get("tokenizer_fingerprint")
        if made_by != first_made_by:
            raise EpisodeError(path, f"made by another tokenizer than {self.paths[0].name} (fingerprint "
                                     f"{made_by} vs {first_made_by})")
        handle, _ = _open(path)
        shape = handle.get_slice("latents").get_shape()
        self.latent_shape = self.latent_shape or shape[1:]
        if shape[1:] != self.latent_shape:
            raise EpisodeError(path, f"latent shape {shape[1:]} differs from {self.paths[0].name}'s")
        actions = handle.get_slice("actions").get_shape()
        self.action_dim = self.action_dim or actions[1]
        if actions[1] != self.action_dim:
            raise EpisodeError(path, f"actions are {actions[1]} wide, the first shard {self.action_dim}")
        episode_index, frame_index = handle.get_tensor("episode_index"), handle.get_tensor("frame_index")
        if not shape[0] == actions[0] == len(episode_index) == len(frame_index):
            raise EpisodeError(path, "its tensors disagree on the number of rows")
        return episode_index, frame_index

    def __len__(self) -> int:
        return self.offsets[-1]

    def runs(self) -> list[tuple[int, int]]:
        """[start, stop) row ranges that hold consecutive frames of one episode."""
        episode, frame = self.episode_index, self.frame_index
        same = (episode[1:] == episode[:-1]) & (frame[1:] == frame[:-1] + 1)
        breaks = (torch.nonzero(~same).flatten() + 1).tolist()
        bounds = [0, *breaks, len(self)]
        return list(zip(bounds[:-1], bounds[1:], strict=True))

    def rows(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(latents [n, C, h, w], actions [n, A]) of rows `start..stop-1`, across shard boundaries."""
        latents, actions = [], []
        shard = bisect.bisect_right(self.offsets, start) - 1
        while start < stop:
            base, end = self.offsets[shard], min(stop, self.offsets[shard + 1])
            handle, _ = _open(self.paths[shard])
            latents.append(handle.get_slice("latents")[start - base : end - base])
            actions.append(handle.get_slice("actions")[start - base : end - base])
            start, shard = end, shard + 1
        return torch.cat(latents), torch.cat(actions)
