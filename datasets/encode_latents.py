"""Encode episodes into latent shards for training the world model.

    python datasets/encode_latents.py --episodes data/voxel --tokenizer runs/tokenizer/tokenizer \\
        --out data/latents
    python datasets/encode_latents.py ... --shard 3/16        # one of 16 jobs over the same episodes

Episodes (any format `gameworld.data.open_episode` reads) are numbered in sorted path order;
that number is each frame's `episode_index`. Episodes are grouped `--episodes-per-shard` at a
time (group g holds episodes g*K .. g*K+K-1) and each group becomes `shard_<g>.safetensors`:
latents (fp16), actions (`space.encode`), episode and frame indices, and a meta header with the
action space, frame size, fps, tokenizer and its encoder's fingerprint. A shard is written
atomically, so an interrupted run resumes by skipping the shards that exist; a shard that another
encoder made (or this one before more training) is encoded again. `--shard i/N` does the
groups i, i+N, ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from gameworld.actions import ActionSpace
from gameworld.data import find_episodes, open_episode, write_shard
from gameworld.data.episode import Episode
from gameworld.data.shards import read_shard_meta
from gameworld.engine import default_device
from gameworld.models import FrameTokenizer


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shard must look like 3/16, got {text!r}") from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"shard {text!r}: need 0 <= i < N")
    return index, count


def shard_path(out: Path, group: int) -> Path:
    return out / f"shard_{group:06d}.safetensors"


def shard_maker(path: Path) -> str | None:
    """The fingerprint of the tokenizer that made a finished shard ("" if it recorded none), or None."""
    return read_shard_meta(path).get("tokenizer_fingerprint", "") if path.exists() else None


def frame_size(
    episode: Episode, path: Path, space: ActionSpace, tokenizer: FrameTokenizer
) -> tuple[int, int]:
    """(height, width) of an episode's frames, after checking its action space and the tokenizer's factor."""
    if episode.space.to_dict() != space.to_dict():
        raise ValueError(f"{path}: action space {episode.space.name!r} differs from the first episode's "
                         f"{space.name!r}")
    height, width = next(episode.frames()).shape[:2]
    try:
        tokenizer.latent_shape(height, width)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    return height, width


@torch.no_grad()
def encode_episode(episode: Episode, tokenizer: FrameTokenizer, batch: int, bar: tqdm) -> torch.Tensor:
    """Latents [T, C, h, w] of every frame of an episode, encoded `batch` frames at a time."""
    latents, chunk = [], []
    for number, frame in enumerate(episode.frames(), start=1):
        chunk.append(frame)
        if len(chunk) == batch or number == len(episode):
            frames = torch.from_numpy(np.stack(chunk))[None]  # [1, n, H, W, 3]
            latents.append(tokenizer.encode(frames)[0].cpu())  # [n, C, h, w]
            bar.update(len(chunk))
            chunk = []
    return torch.cat(latents)


def encode_group(
    members: list[int], episodes: list[Episode], paths: list[Path], tokenizer: FrameTokenizer,
    fingerprint: str, space: ActionSpace, args, bar: tqdm,
) -> tuple[dict, dict]:
    """The tensors and meta of one shard: `episodes`, numbers `members` in `paths`."""
    sizes = {frame_size(e, paths[i], space, tokenizer) for i, e in zip(members, episodes, strict=True)}
    if len(sizes) > 1:
        raise ValueError(f"episodes {[str(paths[i]) for i in members]} have different frame sizes {sizes}")
    latents = [encode_episode(e, tokenizer, args.batch, bar) for e in episodes]
    (height, width), = sizes
    tensors = {
        "latents": torch.cat(latents),  # [N, C, h, w]
        "actions": torch.cat([space.encode(e.actions) for e in episodes]),  # [N, A]
        "episode_index": torch.cat([torch.full((len(x),), i) for i, x in zip(members, latents, strict=True)]),
        "frame_index": torch.cat([torch.arange(len(x)) for x in latents]),
    }
    meta = {
        "action_space": space.to_dict(), "width": width, "height": height, "fps": episodes[0].fps,
        "tokenizer": str(args.tokenizer), "tokenizer_fingerprint": fingerprint,
        "episodes": {str(i): str(paths[i]) for i in members},
    }
    return tensors, meta


def encode(args: argparse.Namespace) -> list[Path]:
    """Write this job's missing shards; returns their paths."""
    paths = find_episodes(args.episodes)
    if not paths:
        raise FileNotFoundError(f"{args.episodes}: no complete episodes found")
    per = args.episodes_per_shard
    groups = range(args.shard[0], (len(paths) + per - 1) // per, args.shard[1])
    device = default_device() if args.device == "auto" else torch.device(args.device)
    tokenizer = FrameTokenizer.from_pretrained(args.tokenizer).to(device).eval()
    fingerprint = tokenizer.fingerprint()
    made = {g: shard_maker(shard_path(args.out, g)) for g in groups}
    todo = [g for g in groups if made[g] != fingerprint]
    stale = sum(made[g] is not None for g in todo)
    done = len(groups) - len(todo)
    print(f"{len(paths)} episodes; {len(groups)} shard(s) for this job, {done} done already"
          + (f", {stale} made by another tokenizer (encoded again)" if stale else ""), file=sys.stderr)
    if not todo:
        return []
    space = open_episode(paths[0]).space
    members = {g: list(range(g * per, min(len(paths), (g + 1) * per))) for g in todo}
    episodes = {i: open_episode(paths[i]) for group in members.values() for i in group}
    written = []
    with tqdm(total=sum(map(len, episodes.values())), unit="frame", desc="encoding") as bar:
        for group in todo:
            chosen = [episodes[i] for i in members[group]]
            tensors, meta = encode_group(members[group], chosen, paths, tokenizer, fingerprint, space, args,
                                         bar)
            written.append(write_shard(shard_path(args.out, group), **tensors, meta=meta))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=Path, required=True, help="episode folder (searched recursively)")
    parser.add_argument("--tokenizer", type=Path, required=True, help="tokenizer directory")
    parser.add_argument("--out", type=Path, required=True, help="folder for the shards")
    parser.add_argument("--shard", type=parse_shard, default=(0, 1), help="i/N: do shards i, i+N, ...")
    parser.add_argument("--episodes-per-shard", type=int, default=16, help="episodes per shard file")
    parser.add_argument("--batch", type=int, default=32, help="frames encoded at once")
    parser.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:1, mps")
    args = parser.parse_args(argv)
    if args.episodes_per_shard < 1 or args.batch < 1:
        parser.error("--episodes-per-shard and --batch must be at least 1")
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        written = encode(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} shard(s) to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
