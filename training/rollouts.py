"""Validation of a world model on held-out episodes: next-frame loss and rollout PSNR, with mp4s.

- `next_frame_loss`: on held-out latent clips, every frame but the last is context (held at the
  sampler's context noise level) and the last is noised to a fixed set of levels; the mean squared
  velocity error of the last frame. Fixed seeds: the same number for the same weights.
- `rollout_psnr`: the engine is started from the first `context` frames of a held-out episode and
  plays its next `frames` actions; PSNR of the generated frames to the recorded ones, beside the
  copy-last-frame baseline (the last context frame held still). Like `eval.score`, a PSNR is that
  of the squared error pooled over frames and episodes, so an episode that holds still (where
  copy-last-frame is exact) adds an error of 0 instead of a stand-in for infinite dB. Each
  rollout is written as an mp4, generated (left) next to ground truth (right).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gameworld.atomic import staged
from gameworld.data import ClipDataset, find_episodes, open_episode
from gameworld.data.video import write_video
from gameworld.diffusion import add_noise, velocity_target
from gameworld.metrics.image import mse, psnr_of_mse
from gameworld.models.dit import NextFrameDiT

NOISE_LEVELS = (0.1, 0.3, 0.5, 0.7, 0.9)


@dataclass
class ValidationConfig:
    shards: str | None = None  # held-out latent shards (next-frame loss)
    episodes: str | None = None  # held-out episodes (rollout PSNR and sample mp4s)
    clips: int = 8  # held-out clips for the next-frame loss
    clip_len: int = 8
    rollouts: int = 2  # held-out episodes rolled out
    context: int = 4  # ground-truth frames the engine starts from
    frames: int = 16  # generated frames per rollout
    samples: bool = True  # write each rollout as an mp4 under <out_dir>/samples


@torch.no_grad()
def next_frame_loss(
    model: NextFrameDiT, clips: ClipDataset, count: int, context_noise: float, seed: int = 0
) -> float:
    """Mean velocity error of the last frame of the first `count` clips (see the module doc)."""
    generator = torch.Generator().manual_seed(seed)
    device, losses = model.device, []
    for index in range(min(count, len(clips))):
        latents, actions = clips[index]  # [T, C, h, w], [T, A]
        levels = torch.full((len(NOISE_LEVELS), len(latents)), context_noise)
        levels[:, -1] = torch.tensor(NOISE_LEVELS)  # [K, T]: context, then the frame to predict
        x0 = latents.float()[None].expand(len(NOISE_LEVELS), *latents.shape)  # [K, T, C, h, w]
        noise = torch.randn(x0.shape, generator=generator)
        noisy = add_noise(x0, noise, levels)
        batch_actions = actions[None].expand(len(NOISE_LEVELS), *actions.shape)
        velocity = model(noisy.to(device), levels.to(device), batch_actions.to(device)).float().cpu()
        error = (velocity[:, -1] - velocity_target(x0, noise)[:, -1]).pow(2).mean()
        losses.append(error.item())
    return float(np.mean(losses))


def held_out_episodes(directory: str | Path, count: int, length: int) -> list:
    """The first `count` episodes (sorted) under `directory` with at least `length` frames."""
    episodes = [open_episode(path) for path in find_episodes(directory)]
    chosen = [episode for episode in episodes if len(episode) >= length][:count]
    if not chosen:
        raise ValueError(f"{directory}: no held-out episode has the {length} frames a rollout needs")
    return chosen


def rollout_psnr(engine, episodes: list, context: int, frames: int, sample_dir: Path | None) -> dict:
    """PSNR of engine rollouts against the recorded frames (over all frames, and at the last one),
    and of the copy-last-frame baseline; each from the squared error pooled over the episodes."""
    errors, baseline = [], []
    for number, episode in enumerate(episodes):
        truth = episode.read_frames(0, context + frames)  # [context + frames, H, W, 3]
        engine.reset(frames=truth[:context], actions=episode.actions[:context])
        generated = engine.rollout(episode.actions[context : context + frames])  # [frames, H, W, 3]
        errors.append(mse(generated, truth[context:]))
        baseline.append(mse(np.broadcast_to(truth[context - 1], generated.shape), truth[context:]))
        if sample_dir is not None:
            side_by_side = np.concatenate([generated, truth[context:]], axis=2)  # [frames, H, 2W, 3]
            sample_dir.mkdir(parents=True, exist_ok=True)
            with staged(sample_dir / f"rollout_{number}.mp4") as tmp:
                write_video(tmp, side_by_side, fps=episode.fps)
    errors = np.stack(errors)  # [episodes, frames]
    return {"rollout_psnr": float(psnr_of_mse(errors.mean())),
            "rollout_psnr_last": float(psnr_of_mse(errors[:, -1].mean())),
            "copy_last_psnr": float(psnr_of_mse(np.mean(baseline)))}
