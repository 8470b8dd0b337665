"""Consistency distillation: a frozen many-step teacher -> a 1-4 step student of the same architecture.

    python -m training.distill --config training/configs/distill_smoke.yaml teacher=runs/world/model \\
        data.shards=data/latents train.out_dir=runs/distill
    torchrun --nproc_per_node 8 -m training.distill --config training/configs/distill_default.yaml ...

The student starts as a copy of the teacher and learns, on clips of latent shards, to jump along
the teacher's ODE (`gameworld.diffusion.consistency`): sCM (continuous time, a JVP through the
student; `consistency.method=scm`) or discrete consistency distillation (`consistency.method=discrete`),
optionally with an adversarial hinge term whose critic is the frozen teacher with small heads
(`adversarial.weight > 0`). Clips are split into context frames (teacher forcing: real latents,
or with probability `self_rollout` the student's own rollout from the first frame, so it trains on
its own errors) and new frames with a noise level each.

Same machinery as `training.train` (the `Trainer`: configs, torchrun, EMA, atomic checkpoints and
exact resume, progress bar, TensorBoard, sample mp4s). Validation reports the student's error
against the teacher's full-step sample from the same noise and context (`val/student_mse_<n>` for
n steps) and rollout PSNR of the student through `WorldEngine`. The result is a normal model
directory (`<train.out_dir>/model` unless `out=`) whose `gameworld.json` says `distilled: true`
and carries the recommended step count (`sampler.steps`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn as nn
import yaml

from gameworld.atomic import write_text_atomic
from gameworld.data import ClipDataset
from gameworld.diffusion import add_noise, commit_frames, rollout_latents, sample_frames
from gameworld.diffusion.consistency import (
    ConsistencyConfig,
    DistillClip,
    consistency_function,
    discrete_cd_loss,
    discrete_grid,
    make_clip,
    scm_loss,
    split_points,
)
from gameworld.modeldir import GameWorldConfig, SamplerDefaults, load_model_dir, save_model_dir
from gameworld.models import FrameTokenizer, NextFrameDiT
from gameworld.models.discriminator import TeacherDiscriminator
from training import distributed
from training.config import to_dict
from training.distributed import DistEnv
from training.image_losses import hinge_discriminator_loss
from training.job import run_job
from training.rollouts import ValidationConfig, held_out_episodes, rollout_psnr
from training.train import DataConfig
from training.trainer import Trainer, TrainerConfig


@dataclass
class AdversarialConfig:
    weight: float = 0.0  # weight of the generator's hinge term in the student's loss; 0 = no critic
    layers: list[int] = field(default_factory=lambda: [-1])  # teacher blocks the heads read
    noise_max: float = 0.6  # real and student frames are re-noised to t ~ U(0, noise_max) for the critic
    lr_scale: float = 20.0  # the critic heads' learning rate / the student's: they start from scratch

    def __post_init__(self) -> None:
        if self.weight < 0 or not 0 <= self.noise_max < 1 or self.lr_scale <= 0:
            raise ValueError(f"AdversarialConfig needs weight >= 0, 0 <= noise_max < 1 and lr_scale > 0: "
                             f"{self}")


@dataclass
class DistillValidationConfig(ValidationConfig):
    steps: list[int] = field(default_factory=lambda: [1, 2, 4])  # student step counts scored
    teacher_steps: int = 32  # the teacher's Euler steps for the reference sample


@dataclass
class DistillJob:
    teacher: str = "runs/world/model"  # the teacher's model directory (tokenizer and gameworld.json too)
    out: str | None = None  # student model directory; default <train.out_dir>/model
    description: str = ""
    self_rollout: float = 0.0  # chance per batch that the context is the student's own rollout
    rollout_steps: int = 1  # the student's steps per frame in those rollouts
    data: DataConfig = field(default_factory=DataConfig)
    consistency: ConsistencyConfig = field(default_factory=ConsistencyConfig)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    sampler: SamplerDefaults = field(default_factory=lambda: SamplerDefaults(steps=4))  # -> gameworld.json
    validation: DistillValidationConfig = field(default_factory=DistillValidationConfig)
    train: TrainerConfig = field(default_factory=TrainerConfig)

    def __post_init__(self) -> None:
        if not 0 <= self.self_rollout <= 1 or self.rollout_steps < 1:
            raise ValueError(f"need 0 <= self_rollout <= 1 and rollout_steps >= 1, got {self.self_rollout} "
                             f"and {self.rollout_steps}")
        segments = self.consistency.segments
        if self.consistency.method == "discrete" and segments > 1 and self.sampler.steps != segments:
            raise ValueError(f"a multistep student (consistency.segments={segments}) samples with that many "
                             f"steps: set sampler.steps={segments} (it is {self.sampler.steps})")


@dataclass
class CriticDraws:
    """The adversarial term's random draws, made outside the module (the trainer's generator)."""

    t: torch.Tensor  # [B, T] critic noise level of the new frames
    noise: torch.Tensor  # [B, T, C, h, w]


class DistillModule(nn.Module):
    """What the trainer trains: the student and the critic heads; the teacher rides along frozen.

    `forward` computes the whole loss, so a DDP wrapper sees one forward per backward.
    """

    def __init__(self, student: NextFrameDiT, teacher: NextFrameDiT, cfg: DistillJob) -> None:
        super().__init__()
        self.cfg = cfg
        self.student, self.teacher = student, teacher.eval().requires_grad_(False)
        adv = cfg.adversarial
        self.critic = (
            TeacherDiscriminator(teacher.config.hidden_size, adv.layers, teacher.config.depth)
            if adv.weight > 0 else None
        )
        self.lr_scales = {"critic.": adv.lr_scale}  # read by the trainer's parameter groups

    def forward(
        self, clip: DistillClip, ramp: float, critic: CriticDraws | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss_fn = scm_loss if self.cfg.consistency.method == "scm" else discrete_cd_loss
        extra = (ramp,) if loss_fn is scm_loss else ()
        consistency = self.cfg.consistency
        loss, figures, v = loss_fn(self.student, self.student, self.teacher, clip, consistency, *extra)
        figures = {"consistency": loss.detach(), **figures}
        if self.critic is not None and critic is not None:
            fake = consistency_function(clip.x_t, clip.t, v)  # the student's clean frames (graph)
            d_loss, g_loss = self._adversarial(clip, fake, critic)
            loss = loss + d_loss + self.cfg.adversarial.weight * g_loss
            figures.update(critic=d_loss.detach(), generator=g_loss.detach())
        return loss, figures

    def _adversarial(
        self, clip: DistillClip, fake: torch.Tensor, draws: CriticDraws
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hinge losses of the critic (on real vs detached student frames) and of the student."""
        moving = clip.moving.bool()
        levels = torch.where(moving, draws.t, clip.t)
        real = add_noise(clip.x0, draws.noise, levels)  # context frames: as the consistency loss saw them
        fake = torch.where(moving[..., None, None, None], add_noise(fake, draws.noise, levels), real)
        both = torch.cat([real, fake]), torch.cat([levels, levels]), torch.cat([clip.actions, clip.actions])
        features = self.critic.features(self.teacher, *both)
        real_f, fake_f = zip(*(f.chunk(2) for f in features), strict=True)
        real_logits = self.critic.logits(list(real_f))[moving]
        fake_logits = self.critic.logits([f.detach() for f in fake_f])[moving]
        generator_logits = self.critic.logits(list(fake_f), frozen_heads=True)[moving]
        return hinge_discriminator_loss(real_logits, fake_logits), -generator_logits.mean()


class DistillLoss:
    """`loss_fn` for the trainer: draws the clip layout and noise, then calls the module."""

    def __init__(self, cfg: DistillJob, module: DistillModule) -> None:
        self.cfg, self.module = cfg, module
        self.trainer: Trainer | None = None  # set once the trainer exists (its step drives the ramp)

    def __call__(self, model: nn.Module, batch, generator: torch.Generator):
        latents, actions = batch  # [B, T, C, h, w] float16, [B, T, A]
        cfg = self.cfg
        x0, actions = latents.float(), actions.float()
        batch_size, frames = x0.shape[:2]
        split = split_points(batch_size, frames, cfg.consistency, generator, x0.device)
        if cfg.self_rollout > 0 and torch.rand((), generator=generator, device=x0.device) < cfg.self_rollout:
            rolled = rollout_latents(self.module.student, x0, actions, int(split.max()), cfg.rollout_steps,
                                     cfg.sampler.context_noise, generator)
            is_context = torch.arange(frames, device=x0.device)[None] < split[:, None]
            x0 = torch.where(is_context[..., None, None, None], rolled, x0)
        clip = make_clip(x0, actions, split, cfg.consistency, generator)
        if cfg.consistency.method == "discrete":
            clip = discrete_grid(clip, cfg.consistency.discrete_intervals, generator)
        critic = None
        if cfg.adversarial.weight > 0:
            t = torch.rand(clip.t.shape, generator=generator, device=x0.device) * cfg.adversarial.noise_max
            critic = CriticDraws(t, torch.randn(x0.shape, generator=generator, device=x0.device))
        step = self.trainer.step if self.trainer is not None else 0
        return model(clip, cfg.consistency.tangent_ramp(step), critic)


@torch.no_grad()
def student_teacher_error(
    student: NextFrameDiT, teacher: NextFrameDiT, latents: torch.Tensor, actions: torch.Tensor,
    steps: list[int], teacher_steps: int, context_noise: float, seed: int = 0,
) -> dict[int, float]:
    """Mean squared error of the student's last frame (n steps) to the teacher's (teacher_steps).

    Clips latents [B, T, C, h, w] with actions [B, T, A]: the first T - 1 frames are committed as
    context (same noise for both models) and the last is sampled from the same noise.
    """

    def sample(model: NextFrameDiT, count: int) -> torch.Tensor:
        generator = torch.Generator(latents.device).manual_seed(seed)
        cache = model.new_cache(latents.shape[0], device=latents.device, dtype=latents.dtype)
        commit_frames(model, cache, latents[:, :-1], actions[:, :-1], context_noise, generator)
        noise = torch.randn(latents[:, -1:].shape, generator=generator, device=latents.device)
        return sample_frames(model, cache, actions[:, -1:], steps=count, noise=noise, commit=False)

    reference = sample(teacher, teacher_steps)
    return {n: float((sample(student, n) - reference).pow(2).mean()) for n in steps}


class DistillValidation:
    """Student vs teacher error on held-out clips and student rollout PSNR, on rank 0."""

    def __init__(self, cfg: DistillJob, tokenizer: FrameTokenizer, config: GameWorldConfig,
                 teacher: NextFrameDiT) -> None:
        val = cfg.validation
        self.cfg, self.tokenizer, self.config, self.teacher = cfg, tokenizer, config, teacher
        self.clips = ClipDataset(val.shards, val.clip_len, seed=0, shuffle=False) if val.shards else None
        length = val.context + val.frames
        self.episodes = held_out_episodes(val.episodes, val.rollouts, length) if val.episodes else []

    def student(self, trainer: Trainer) -> NextFrameDiT:
        """The EMA student (collective under FSDP: every rank calls it)."""
        state = trainer.ema_state_dict()
        model = NextFrameDiT.from_config(self.teacher.config)
        prefix = "student."
        model.load_state_dict({k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)})
        return model.to(trainer.device).eval()

    def __call__(self, trainer: Trainer) -> dict[str, float]:
        student = self.student(trainer)
        if not trainer.env.is_main:
            return {}
        val, values = self.cfg.validation, {}
        if self.clips is not None:
            count = min(val.clips, len(self.clips))
            latents, actions = zip(*(self.clips[i] for i in range(count)), strict=True)
            latents = torch.stack(latents).float().to(trainer.device)  # [N, T, C, h, w]
            actions = torch.stack(actions).to(trainer.device)  # [N, T, A]
            errors = student_teacher_error(
                student, self.teacher, latents, actions, val.steps, val.teacher_steps,
                self.cfg.sampler.context_noise,
            )
            values.update({f"student_mse_{n}": error for n, error in errors.items()})
        if self.episodes:
            from gameworld.engine import WorldEngine

            # the network alone: a motion prior the model directory may bring stays off
            engine = WorldEngine(
                self.config, self.tokenizer, student, device=trainer.device, motion_prior=None
            )
            samples = Path(trainer.out_dir) / "samples" / f"step_{trainer.step:06d}"
            values.update(rollout_psnr(engine, self.episodes, val.context, val.frames,
                                       samples if val.samples else None))
        return values


def check_teacher(teacher: NextFrameDiT, clips: ClipDataset, cfg: DistillJob) -> None:
    model = teacher.config
    shape = (model.in_channels, model.latent_height, model.latent_width)
    if tuple(clips.shards.latent_shape) != shape or clips.space.dim != model.action_dim:
        raise ValueError(f"{cfg.data.shards}: latents {tuple(clips.shards.latent_shape)} and "
                         f"{clips.space.dim}-dim actions, but the teacher {cfg.teacher} takes {shape} and "
                         f"{model.action_dim}")
    if cfg.data.clip_len > model.max_frames:
        raise ValueError(f"data.clip_len {cfg.data.clip_len} is longer than the teacher's window "
                         f"({model.max_frames} frames)")


def run(cfg: DistillJob, env: DistEnv) -> Path | None:
    """Distil (or resume) and export; returns the student's model directory, or None when stopped."""
    torch.manual_seed(cfg.train.seed)
    config, tokenizer, teacher = load_model_dir(cfg.teacher)
    clips = ClipDataset(cfg.data.shards, cfg.data.clip_len, stride=cfg.data.stride, seed=cfg.train.seed,
                        rank=env.rank, world_size=env.world_size)
    check_teacher(teacher, clips, cfg)
    student = NextFrameDiT.from_config(teacher.config)
    student.load_state_dict(teacher.state_dict())
    module = DistillModule(student, teacher, cfg)
    loss = DistillLoss(cfg, module)
    trainer = Trainer(cfg.train, module, clips, loss, env, config=to_dict(cfg))
    loss.trainer = trainer
    if env.is_main:
        write_text_atomic(trainer.out_dir / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    student_config = replace(config, sampler=cfg.sampler, distilled=True,
                             description=cfg.description or f"{config.description} (distilled)".strip())
    validation = DistillValidation(cfg, tokenizer.to(env.device), student_config, module.teacher)
    if not trainer.fit(validate=validation):
        return None
    final = validation.student(trainer).cpu()
    out = Path(cfg.out or trainer.out_dir / "model")
    if env.is_main:
        save_model_dir(out, student_config, tokenizer.cpu(), final)
        print(f"student model directory written to {out}", file=sys.stderr)
    distributed.barrier(env)
    return out


def main(argv: list[str] | None = None) -> int:
    return run_job("distill", argv, DistillJob, run, __doc__, "training/configs/distill_default.yaml")


if __name__ == "__main__":
    sys.exit(main())
