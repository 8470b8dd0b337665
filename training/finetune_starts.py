"""Fine-tune a world model on the motion prior's starts: train the frames the engine samples.

    python -m training.encode_starts --model MODEL_DIR --shards data/latents --out data/starts
    python -m training.finetune_starts --config training/configs/starts_default.yaml model=MODEL_DIR \\
        data.shards=data/latents data.starts=data/starts

With a motion prior the engine does not draw a moving frame from pure noise: it starts from the
frame before, moved by the prior and noised to the prior's level, and runs the model's few steps
from there (`EngineSettings.motion_prior`). A model distilled from pure noise never saw such a
start; it finishes it and keeps the move, but streaks the strip a turn uncovers and drifts.
This job trains exactly that sampler: every frame of a clip starts from its start (`encode_starts`)
noised to the level, or with probability `noise_start` from pure noise (the still frames' path),
and is denoised in the model's own Euler steps, against a clean past (teacher forcing, as
`flow.py`); the loss is the squared error of each step's clean estimate to the true frame,
backpropagated through the steps. A clip's first frame has no past and is not trained.

An experiment, not a recipe stage: on the default model (300 steps) the squared error taught the
network to draw the clean frame before instead of the moved start (a blend of two rough guesses that
leans on the sharper one), so the view stopped moving (eval/results/prior_starts). A loss that does
not reward a blend (adversarial, or a teacher sampled from the same starts) is the next thing to try.

Same machinery as `training.train` (the `Trainer`: configs, EMA, atomic checkpoints and exact
resume, progress bar). Validation reports the loss on held-out start shards (fixed draws) and the
rollout PSNR of the engine with the prior. The result is a model directory (`<train.out_dir>/model`
unless `out=`) with the model's tokenizer, `gameworld.json`, motion prior and IDM.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from torch.utils.data import Dataset

from gameworld.atomic import write_text_atomic
from gameworld.data import ClipDataset
from gameworld.data.shards import ShardSet
from gameworld.diffusion import add_noise, drop_actions, integrate, time_schedule
from gameworld.modeldir import (
    GameWorldConfig,
    SamplerDefaults,
    load_model_dir,
    resolve_model_dir,
    save_model_dir,
)
from gameworld.models import FrameTokenizer, NextFrameDiT
from gameworld.motion_prior import MotionPrior, find_motion_prior
from training import distributed
from training.config import to_dict
from training.distributed import DistEnv
from training.encode_starts import STARTS_META, prior_record
from training.job import run_job
from training.rollouts import ValidationConfig, held_out_episodes, rollout_psnr
from training.trainer import Trainer, TrainerConfig


@dataclass
class StartsDataConfig:
    shards: str = "data/latents"  # the latent shards the model trained on
    starts: str = "data/starts"  # their starts (`training.encode_starts` with this model)
    clip_len: int = 8
    stride: int | None = None


@dataclass
class StartsConfig:
    """How each frame is started and how it is trained (the sampler itself is the model's own)."""

    noise_start: float = 0.25  # chance per frame to start from pure noise instead of its start
    context_noise_max: float = 0.1  # the clean past is held at t ~ U(0, context_noise_max)
    action_dropout: float = 0.0  # chance per frame that its action becomes the zero vector

    def __post_init__(self) -> None:
        for name in ("noise_start", "context_noise_max", "action_dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"StartsConfig.{name} must be in [0, 1], got {getattr(self, name)}")


@dataclass
class StartsValidationConfig(ValidationConfig):
    starts: str | None = None  # held-out start shards of `shards` (the held-out loss)


@dataclass
class StartsJob:
    model: str = "default"  # the model directory (or shipped name) to fine-tune; it needs a motion prior
    out: str | None = None  # model directory to write; default <train.out_dir>/model
    data: StartsDataConfig = field(default_factory=StartsDataConfig)
    starts: StartsConfig = field(default_factory=StartsConfig)
    validation: StartsValidationConfig = field(default_factory=StartsValidationConfig)
    train: TrainerConfig = field(default_factory=TrainerConfig)


class StartClips(Dataset):
    """Item i: `(latents float16 [T, C, h, w], actions float32 [T, A], starts float16 [T, C, h, w])`,
    clip i of `ClipDataset(shards)` with the same rows of the start shards."""

    def __init__(self, shards: str, starts: str, clip_len: int, **clip_options) -> None:
        self.clips = ClipDataset(shards, clip_len, **clip_options)
        if self.clips.shards is None:
            raise ValueError(f"{shards}: no latent shards (the starts pair with shard rows)")
        self.starts = ShardSet(starts)
        ours, theirs = self.clips.shards, self.starts
        same = torch.equal(ours.episode_index, theirs.episode_index) and torch.equal(
            ours.frame_index, theirs.frame_index)
        if not same:
            raise ValueError(f"{starts}: its rows are not those of {shards} (encode_starts made it from "
                             f"{theirs.meta.get('starts_of', 'other shards')})")

    @property
    def prior(self) -> dict | None:
        """The motion prior that made the starts, as `encode_starts` recorded it."""
        return self.starts.meta.get(STARTS_META)

    def set_epoch(self, epoch: int) -> None:
        self.clips.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        latents, actions = self.clips[index]
        starts, _ = self.starts.rows(*self.clips.row_span(index))
        return latents, actions, starts


def start_loss(
    model: NextFrameDiT,
    latents: torch.Tensor,
    actions: torch.Tensor,
    starts: torch.Tensor,
    level: float,
    sampler: SamplerDefaults,
    cfg: StartsConfig,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean squared error of the clean estimates of frames 1.. of clips latents [B, T, C, h, w] (actions
    [B, T, A]), each sampled as the engine samples it: from its start [B, T, C, h, w] noised to
    `level` (or from pure noise), along the sampler's schedule (`integrate`), against a clean past.
    Every model call's estimate counts; the gradient runs through the whole chain."""
    batch, frames = latents.shape[:2]
    device = latents.device
    from_noise = torch.rand(batch, frames, generator=generator, device=device) < cfg.noise_start
    top = torch.where(from_noise, 1.0, level)  # [B, T]: where each frame's steps begin
    noise = torch.randn(latents.shape, generator=generator, device=device) * sampler.temperature
    x = add_noise(starts, noise, top)  # [B, T, C, h, w]; pure noise where top = 1
    context_t = torch.rand(batch, frames, generator=generator, device=device) * cfg.context_noise_max
    context = add_noise(latents, torch.randn(latents.shape, generator=generator, device=device), context_t)
    actions = drop_actions(actions, cfg.action_dropout, generator)
    losses = []

    def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
        """dx/dt on the schedule from 1 to 0, which each frame runs scaled to its own top level."""
        levels = top * t  # [B, T]
        v = model(x, levels, actions, context=context, context_levels=context_t)
        estimate = x - levels[..., None, None, None] * v  # the clean frames this call aims at
        losses.append((estimate[:, 1:].float() - latents[:, 1:].float()).pow(2).mean())
        return top[..., None, None, None] * v

    integrate(velocity, x, time_schedule(sampler.steps, sampler.shift, device), sampler.sampler)
    return torch.stack(losses).mean()


class StartsValidation:
    """Held-out start loss (fixed draws) and rollout PSNR of the engine with the prior, on rank 0."""

    def __init__(self, cfg: StartsJob, config: GameWorldConfig, tokenizer: FrameTokenizer, prior: MotionPrior,
                 level: float, architecture: dict) -> None:
        val = cfg.validation
        self.cfg, self.config, self.tokenizer, self.prior, self.level = cfg, config, tokenizer, prior, level
        self.architecture = architecture  # the world model's config
        self.clips = None
        if val.shards and val.starts:
            self.clips = StartClips(val.shards, val.starts, val.clip_len, seed=0, shuffle=False)
        length = val.context + val.frames
        self.episodes = held_out_episodes(val.episodes, val.rollouts, length) if val.episodes else []

    def eval_model(self, trainer: Trainer) -> NextFrameDiT:
        model = NextFrameDiT.from_config(self.architecture)
        model.load_state_dict(trainer.ema_state_dict())
        return model.to(trainer.device).eval()

    @torch.no_grad()
    def __call__(self, trainer: Trainer) -> dict[str, float]:
        model = self.eval_model(trainer)
        if not trainer.env.is_main:
            return {}
        values = {}
        if self.clips is not None:
            generator = torch.Generator(trainer.device).manual_seed(0)
            count = min(self.cfg.validation.clips, len(self.clips))
            latents, actions, starts = (torch.stack(parts).float().to(trainer.device)
                                        for parts in zip(*(self.clips[i] for i in range(count)), strict=True))
            values["start_loss"] = float(start_loss(model, latents, actions, starts, self.level,
                                                    self.config.sampler, self.cfg.starts, generator))
        if self.episodes:
            from gameworld.engine import WorldEngine

            engine = WorldEngine(self.config, self.tokenizer, model, device=trainer.device, prior=self.prior,
                                 motion_prior=self.level)
            samples = Path(trainer.out_dir) / "samples" / f"step_{trainer.step:06d}"
            val = self.cfg.validation
            values.update(rollout_psnr(engine, self.episodes, val.context, val.frames,
                                       samples if val.samples else None))
        return values


def write_model_dir(out: Path, source: Path, config: GameWorldConfig, tokenizer: FrameTokenizer,
                    model: NextFrameDiT) -> None:
    """`source`'s directory with the fine-tuned world model (its prior and IDM come along)."""
    if not out.exists():
        shutil.copytree(source, out, ignore=shutil.ignore_patterns("README.md"))
    save_model_dir(out, config, tokenizer, model)


def run(cfg: StartsJob, env: DistEnv) -> Path | None:
    """Fine-tune (or resume) and write the model directory; None when stopped by a signal."""
    torch.manual_seed(cfg.train.seed)
    source = resolve_model_dir(cfg.model)
    config, tokenizer, model = load_model_dir(source)
    level = config.sampler.motion_prior
    prior = find_motion_prior(source)
    if prior is None or level is None:
        raise ValueError(f"{source}: fine-tuning on starts needs a motion prior that the model uses "
                         "(python -m training.fit_motion_prior --level L)")
    clips = StartClips(cfg.data.shards, cfg.data.starts, cfg.data.clip_len, stride=cfg.data.stride,
                       seed=cfg.train.seed, rank=env.rank, world_size=env.world_size)
    if clips.prior != prior_record(prior):
        raise ValueError(f"{cfg.data.starts}: these starts were moved by another motion prior than "
                         f"{source}'s; make them again with python -m training.encode_starts")
    model = model.float()  # a shipped model is stored in float16

    def loss(net, batch, generator):
        latents, actions, starts = batch  # [B, T, C, h, w] float16, [B, T, A], [B, T, C, h, w] float16
        return start_loss(net, latents.float(), actions, starts.float(), level, config.sampler, cfg.starts,
                          generator)

    trainer = Trainer(cfg.train, model, clips, loss, env, config=to_dict(cfg),
                      tokens_per_item=2 * cfg.data.clip_len * model.tokens_per_frame)
    if env.is_main:
        write_text_atomic(trainer.out_dir / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    validation = StartsValidation(cfg, config, tokenizer.to(env.device), prior, level, dict(model.config))
    if not trainer.fit(validate=validation):
        return None
    final = validation.eval_model(trainer).cpu()
    out = Path(cfg.out or trainer.out_dir / "model")
    if env.is_main:
        write_model_dir(out, source, config, tokenizer.cpu(), final)
        print(f"model directory written to {out}", file=sys.stderr)
    distributed.barrier(env)
    return out


def main(argv: list[str] | None = None) -> int:
    return run_job("finetune_starts", argv, StartsJob, run, __doc__, "training/configs/starts_default.yaml")


if __name__ == "__main__":
    sys.exit(main())
