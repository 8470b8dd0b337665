"""Encode the motion prior's starts of a latent shard set: the guesses the engine samples from.

    python -m training.encode_starts --model MODEL_DIR --shards data/default/latents_voxel \\
        --out data/default/starts_voxel

With a motion prior the engine starts a frame from the frame before it, decoded, moved by the
prior's zoom, pan and roll for the frame's action (`apply_motion`) and encoded again, noised to the
prior's level (`WorldEngine`, `EngineSettings.motion_prior`). This job makes those starts for every
frame of a shard set, from the frames as the engine would show them (each previous frame's latents
decoded by the model's tokenizer), so that `training.finetune_starts` can train the network on what
it meets at inference. The camera is read in the degrees the actions asked for (the engine's prior
reads them so, not the action space's bins), and the pitch is followed as the engine follows it:
from level at an episode's first frame, turned by every action after it and stopped at the prior's
limit.

The output mirrors the input shard for shard and row for row (same actions and indices; its
`latents` are the starts) and records the prior that moved them in its meta, so the fine-tuning
job can refuse starts of another prior. An episode's first frame has no frame before it: its row
holds its own latents (the fine-tuning never trains a clip's first frame). A shard already written
from the same source shard with the same prior is skipped, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from gameworld.actions import Action, ActionSpace
from gameworld.data import write_shard
from gameworld.data.errors import EpisodeError
from gameworld.data.shards import LatentShard, ShardSet, read_shard, read_shard_meta
from gameworld.engine import default_device
from gameworld.metrics.motion import apply_motion
from gameworld.modeldir import read_config, resolve_model_dir
from gameworld.models import FrameTokenizer
from gameworld.motion_prior import MotionPrior, find_motion_prior

STARTS_META = "motion_prior_starts"  # the shard meta key that holds the prior that made the starts
CHUNK = 64  # frames decoded, moved and encoded at once


def prior_record(prior: MotionPrior) -> dict:
    """What a start shard records of the prior that moved its frames (compared on resume and by
    the fine-tuning job)."""
    return json.loads(prior.to_json())


class StartMaker:
    """Starts of consecutive shard rows; carries the last row across shards (an episode may go on)."""

    def __init__(self, tokenizer: FrameTokenizer, prior: MotionPrior, space: ActionSpace) -> None:
        self.tokenizer, self.prior, self.space = tokenizer, prior, space
        self.device = next(tokenizer.parameters()).device
        self.last: tuple[int, int] | None = None  # (episode_index, frame_index) of the row before
        self.last_frame: np.ndarray | None = None  # that row's decoded frame [H, W, 3]
        self.pitch = 0.0  # that row's pitch in degrees (an episode's first frame is taken as level)

    def __call__(self, shard: LatentShard, bar: tqdm) -> torch.Tensor:
        """Start latents float16 [N, C, h, w] of the shard's N rows."""
        starts = shard.latents.clone()  # an episode's first row keeps its own latents
        for first in range(0, len(shard), CHUNK):
            rows = range(first, min(len(shard), first + CHUNK))
            frames = self._decode(shard.latents[first : rows.stop])  # [n, H, W, 3]
            moved, where = [], []
            actions = self.space.decode(shard.actions[first : rows.stop], exact_camera=True)
            for row, frame, action in zip(rows, frames, actions, strict=True):
                motion = self._advance(shard, row, action)
                if motion is not None:
                    moved.append(apply_motion(self.last_frame, motion))
                    where.append(row)
                self.last_frame = frame
            if moved:
                starts[where] = self.tokenizer.encode(np.stack(moved)[None])[0].cpu().to(torch.float16)
            bar.update(len(rows))
        return starts

    def skip(self, shard: LatentShard) -> None:
        """Pass over a shard done before: follow its pitch and remember its last frame."""
        for row, action in enumerate(self.space.decode(shard.actions, exact_camera=True)):
            self._advance(shard, row, action)
        self.last_frame = self._decode(shard.latents[-1:])[0]

    def _decode(self, latents: torch.Tensor) -> np.ndarray:
        return self.tokenizer.decode(latents[None].float().to(self.device))[0].cpu().numpy()

    def _advance(self, shard: LatentShard, row: int, action: Action) -> np.ndarray | None:
        """The prior's motion [3] from the row before to `row` (None at an episode's first frame);
        `row` becomes the row before."""
        here = (int(shard.episode_index[row]), int(shard.frame_index[row]))
        motion = None
        if self.last == (here[0], here[1] - 1):
            motion = self.prior.held(action, 1, self.pitch)[0]
            self.pitch = self.prior.pitch_after(self.pitch, [action])
        else:
            self.pitch = 0.0
        self.last = here
        return motion


def encode_starts(model: str, shards: str | Path, out: str | Path, device: str = "auto") -> list[Path]:
    """Write the start shards of `shards` under `out`; returns the shards written (not skipped)."""
    model_dir = resolve_model_dir(model)
    prior = find_motion_prior(model_dir)
    if prior is None:
        raise FileNotFoundError(f"{model_dir}: no motion prior (python -m training.fit_motion_prior "
                                "writes one)")
    source, out = ShardSet(shards), Path(out)
    config = read_config(model_dir)
    space = ActionSpace.from_dict(source.meta["action_space"])
    if space.to_dict() != config.space.to_dict():
        raise ValueError(f"{shards}: the shards' action space {space.name!r} is not the model's")
    torch_device = default_device() if device == "auto" else torch.device(device)
    tokenizer = FrameTokenizer.from_pretrained(model_dir / "tokenizer").to(torch_device).eval()
    if source.meta.get("tokenizer_fingerprint") not in (None, tokenizer.fingerprint()):
        raise ValueError(f"{shards}: these latents were made by another tokenizer than {model_dir}'s")
    record = prior_record(prior)
    maker, written = StartMaker(tokenizer, prior, space), []
    with tqdm(total=len(source), unit="frame", desc="encoding starts") as bar:
        for path in source.paths:
            target = out / path.name
            shard = read_shard(path)
            meta = {**shard.meta, STARTS_META: record, "starts_of": str(path)}
            if target.exists() and read_shard_meta(target) == meta:
                maker.skip(shard)  # the next shard may go on with its last episode
                bar.update(len(shard))
                continue
            starts = maker(shard, bar)
            written.append(write_shard(target, starts, shard.actions, shard.episode_index,
                                       shard.frame_index, meta))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="model directory (or name) with a motion prior")
    parser.add_argument("--shards", required=True, help="latent shards the model trained on")
    parser.add_argument("--out", required=True, help="folder for the start shards")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    try:
        written = encode_starts(args.model, args.shards, args.out, args.device)
    except (FileNotFoundError, ValueError, EpisodeError) as err:
        print(f"encode_starts: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} start shard(s) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
