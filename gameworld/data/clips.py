"""`ClipDataset`: fixed-length training clips from many episodes, or from a directory of latent shards.

It is a map-style `torch.utils.data.Dataset` whose order is already decided: the clips of the
whole data set are shuffled from `(seed, epoch)` and dealt out to the DDP ranks, each rank
getting a disjoint share of the same size (the few left over are dropped that epoch, so ranks
stay in lockstep). Use it with `DataLoader(dataset, shuffle=False)` and call
`dataset.set_epoch(epoch)` before each epoch. Clips never straddle two episodes (nor a gap in
an episode's frame numbers), and each clip's actions are those of its own frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from gameworld.actions import ActionSpace
from gameworld.data.episode import Episode
from gameworld.data.formats import find_episodes, open_episode
from gameworld.data.shards import SHARD_SUFFIX, ShardSet


def _clip_starts(length: int, clip_len: int, stride: int) -> range:
    return range(0, length - clip_len + 1, stride)


class ClipDataset(Dataset):
    """Item i: `(frames uint8 [T, H, W, 3], actions float32 [T, A])` from episodes, or
    `(latents float16 [T, C, h, w], actions float32 [T, A])` from latent shards.

    `source` is a directory of `*.safetensors` shards, a directory of episodes (any format,
    found with `find_episodes`), or a list of episode paths / `Episode`s. Clips start every
    `stride` frames (default `clip_len`: no overlap). `space` encodes episode actions (default:
    the episodes' own space, which must agree across episodes).
    """

    def __init__(
        self,
        source: str | Path | Sequence[str | Path | Episode],
        clip_len: int,
        *,
        stride: int | None = None,
        space: ActionSpace | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
    ) -> None:
        if clip_len < 1 or (stride is not None and stride < 1):
            raise ValueError(f"clip_len and stride must be positive, got {clip_len} and {stride}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        self.clip_len, self.stride = clip_len, stride or clip_len
        self.seed, self.rank, self.world_size, self.shuffle = seed, rank, world_size, shuffle
        self.shards: ShardSet | None = None
        self.episodes: list[Episode] = []
        if isinstance(source, (str, Path)) and any(Path(source).glob(f"*{SHARD_SUFFIX}")):
            self.shards = ShardSet(source)
            self.space = self._shard_space(space)
            if self.space.dim != self.shards.action_dim:
                raise ValueError(f"{source}: shard actions are {self.shards.action_dim} wide, "
                                 f"but action space {self.space.name!r} encodes {self.space.dim}")
            runs = self.shards.runs()
        else:
            paths = find_episodes(source) if isinstance(source, (str, Path)) else source
            quiet = rank != 0 or len(paths) < 100
            paths = tqdm(paths, desc="opening episodes", unit="episode", disable=quiet)
            self.episodes = [e if isinstance(e, Episode) else open_episode(e) for e in paths]
            self.space = self._episode_space(space)
            runs = [(0, len(episode)) for episode in self.episodes]
        # A run is a [start, stop) range of consecutive frames of one episode: shard rows, or a whole
        # episode. Each clip is (run number, first frame within the run).
        clips = [(r, s) for r, (a, b) in enumerate(runs) for s in _clip_starts(b - a, clip_len, self.stride)]
        if not clips:
            raise ValueError(f"no episode in {source!r} has {clip_len} consecutive frames")
        self.runs = runs
        self.clips = np.array(clips, dtype=np.int64)  # [clips, 2]
        self.set_epoch(0)

    def _shard_space(self, space: ActionSpace | None) -> ActionSpace:
        directory, stored = self.shards.directory, self.shards.meta.get("action_space")
        if stored is None:
            if space is None:
                raise ValueError(f"{directory}: the shard meta has no action_space; pass space=")
            return space
        stored = ActionSpace.from_dict(stored)
        if space is not None and space.to_dict() != stored.to_dict():
            raise ValueError(f"{directory}: shards were encoded with the action space {stored.name!r}")
        return stored

    def _episode_space(self, space: ActionSpace | None) -> ActionSpace:
        if space is not None:
            return space
        first = self.episodes[0].space
        for episode in self.episodes[1:]:
            if episode.space.to_dict() != first.to_dict():
                raise ValueError(f"{episode.video_path}: action space {episode.space.name!r} differs from "
                                 f"{self.episodes[0].video_path}'s; pass space= to encode them alike")
        return first

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle (from `seed` and `epoch`) and re-deal this rank's share of the clips."""
        total = len(self.clips)
        order = np.arange(total)
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(total)
        per_rank = total // self.world_size
        self.epoch = epoch
        self.order = order[: per_rank * self.world_size][self.rank :: self.world_size]

    def __len__(self) -> int:
        return len(self.order)

    def locate(self, index: int) -> tuple[int, int]:
        """(episode number, first frame) of item `index`: a position in `episodes`, or a shard
        `episode_index` with its `frame_index`."""
        run, start = self._clip(index)
        row = self.runs[run][0] + start
        if self.shards is not None:
            return int(self.shards.episode_index[row]), int(self.shards.frame_index[row])
        return int(run), int(start)

    def _clip(self, index: int) -> tuple[int, int]:
        """(run number, first frame within the run) of item `index`."""
        if not 0 <= index < len(self):
            raise IndexError(f"clip {index} of {len(self)}")
        run, start = self.clips[self.order[index]]
        return int(run), int(start)

    def row_span(self, index: int) -> tuple[int, int]:
        """[start, stop) shard rows of item `index` (data from latent shards only)."""
        if self.shards is None:
            raise ValueError("row_span: this data set reads episodes, not shard rows")
        run, start = self._clip(index)
        first = self.runs[run][0] + start
        return first, first + self.clip_len

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.shards is not None:
            latents, actions = self.shards.rows(*self.row_span(index))  # [T, C, h, w], [T, A]
            return latents, actions.float()
        run, start = self._clip(index)
        stop = start + self.clip_len
        episode = self.episodes[run]
        frames = torch.from_numpy(episode.read_frames(start, stop))  # [T, H, W, 3]
        return frames, self.space.encode(episode.actions[start:stop])  # [T, A]
