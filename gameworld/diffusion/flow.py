"""Flow matching with one noise level per frame (the training objective of `NextFrameDiT`).

Convention: t in [0, 1] per frame, 0 = clean data, 1 = pure noise;
`x_t = (1 - t) * x0 + t * eps` and the model predicts the velocity `v = eps - x0`, so sampling
integrates dx/dt = v from t = 1 down to t = 0.

Every frame of a clip draws its own t (logit-normal), so a clip mixes clean-ish and noisy frames
and the model learns to denoise any frame given a context of any cleanliness (diffusion forcing).
Three devices make it match inference:

- context noise: with probability `context_prob` a clip is split at a random frame k; frames < k
  become *context* with t ~ U(0, context_noise_max), as the sampler holds committed frames at a
  small noise level; their loss is weighted by `context_loss_weight` (0 by default: they condition,
  and predicting eps from a nearly clean frame is mostly noise).
- teacher forcing: with probability `teacher_forcing` a batch is trained the way inference runs:
  every frame i at its own noise level sees a clean copy of the clip (frames < i at context noise)
  and nothing noisy but itself (`NextFrameDiT.forward` with `context`). Without it, only the first
  new frame after a context split sees a clean past, one frame in a clip at best; with it, all do,
  for twice the tokens. The clean copy can also be another clip of the same actions, such as a
  model's own rollout (`context=`): the frames then learn to continue the past a model made, errors
  included, towards the true next frame (against drift; see `training/train.py`, `rollout`).
- action dropout: each frame's action is replaced, with probability `action_dropout`, by the zero
  vector (never a valid encoding: `ActionSpace.encode` always sets a camera bin). The zero vector is
  the "no action" input that classifier-free guidance contrasts with (see `samplers.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class FlowMatchingConfig:
    noise_mean: float = 0.0  # logit-normal location of the per-frame noise level
    noise_std: float = 1.0  # logit-normal scale
    context_prob: float = 0.5  # chance that a clip is trained as context frames + new frames
    context_noise_max: float = 0.1  # context frames get t ~ U(0, context_noise_max)
    context_loss_weight: float = 0.0  # loss weight of the context frames
    teacher_forcing: float = 0.0  # chance that a batch is trained with a clean context for every frame
    action_dropout: float = 0.1  # chance per frame that its action becomes the zero vector

    def __post_init__(self) -> None:
        for name in ("context_prob", "context_noise_max", "teacher_forcing", "action_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"FlowMatchingConfig.{name} must be in [0, 1], got {value}")
        if self.noise_std <= 0 or self.context_loss_weight < 0:
            raise ValueError(f"FlowMatchingConfig needs noise_std > 0 and context_loss_weight >= 0: {self}")


def sample_noise_levels(
    batch_size: int,
    num_frames: int,
    generator: torch.Generator | None = None,
    mean: float = 0.0,
    std: float = 1.0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """[B, T] noise levels, independent per frame: sigmoid(mean + std * N(0, 1)) (logit-normal)."""
    normal = torch.randn(batch_size, num_frames, generator=generator, device=device)
    return torch.sigmoid(mean + std * normal)


def _frame_axes(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.reshape(*t.shape, *([1] * (like.ndim - t.ndim))).to(like.dtype)  # [B, T] -> [B, T, 1, 1, 1]


def add_noise(latents: torch.Tensor, noise: torch.Tensor, noise_levels: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x0 + t eps, with t [B, T] broadcast over each frame [B, T, C, h, w]."""
    t = _frame_axes(noise_levels, latents)
    return (1 - t) * latents + t * noise


def velocity_target(latents: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """v = eps - x0: the derivative of x_t with respect to t."""
    return noise - latents


def drop_actions(
    actions: torch.Tensor, probability: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Replace each frame's action [B, T, A] by the zero vector with `probability`."""
    if probability <= 0:
        return actions
    keep = torch.rand(actions.shape[:2], generator=generator, device=actions.device) >= probability
    return actions * keep[..., None].to(actions.dtype)


def flow_matching_loss(
    model: torch.nn.Module,
    latents: torch.Tensor,
    actions: torch.Tensor,
    cfg: FlowMatchingConfig,
    generator: torch.Generator | None = None,
    context: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared velocity error of `model` on clips latents [B, T, C, h, w] with actions [B, T, A].

    With `context` [B, T, C, h, w] the batch is trained teacher forced on that clean past instead
    of `latents` (whose frames stay the targets).
    """
    batch, frames = latents.shape[:2]
    device = latents.device
    if context is not None:
        if context.shape != latents.shape:
            raise ValueError(
                f"context {tuple(context.shape)} must have the shape of latents {tuple(latents.shape)}"
            )
        return _teacher_forced_loss(model, latents, actions, cfg, generator, context)
    if cfg.teacher_forcing > 0 and _chance(cfg.teacher_forcing, generator, device):
        return _teacher_forced_loss(model, latents, actions, cfg, generator, latents)
    t = sample_noise_levels(batch, frames, generator, cfg.noise_mean, cfg.noise_std, device)
    weights = torch.ones(batch, frames, device=device)
    if cfg.context_prob > 0 and frames > 1:
        use_context = torch.rand(batch, generator=generator, device=device) < cfg.context_prob  # [B]
        split = torch.randint(1, frames, (batch,), generator=generator, device=device)  # first new frame
        is_context = use_context[:, None] & (torch.arange(frames, device=device)[None] < split[:, None])
        context_t = torch.rand(batch, frames, generator=generator, device=device) * cfg.context_noise_max
        t = torch.where(is_context, context_t, t)
        weights = torch.where(is_context, torch.full_like(weights, cfg.context_loss_weight), weights)
    noise = torch.randn(latents.shape, generator=generator, device=device, dtype=latents.dtype)
    actions = drop_actions(actions, cfg.action_dropout, generator)
    prediction = model(add_noise(latents, noise, t), t, actions)
    error = (prediction.float() - velocity_target(latents, noise).float()).pow(2)
    per_frame = error.flatten(2).mean(-1)  # [B, T]
    return (per_frame * weights).sum() / weights.sum().clamp_min(1e-8)


def _chance(probability: float, generator: torch.Generator | None, device: torch.device) -> bool:
    return torch.rand(1, generator=generator, device=device).item() < probability


def _teacher_forced_loss(
    model: torch.nn.Module,
    latents: torch.Tensor,
    actions: torch.Tensor,
    cfg: FlowMatchingConfig,
    generator: torch.Generator | None,
    clean_past: torch.Tensor,
) -> torch.Tensor:
    """Every frame denoised from its own noise level against a clean past (`clean_past` at context noise)."""
    batch, frames = latents.shape[:2]
    device = latents.device
    t = sample_noise_levels(batch, frames, generator, cfg.noise_mean, cfg.noise_std, device)
    context_t = torch.rand(batch, frames, generator=generator, device=device) * cfg.context_noise_max
    noise = torch.randn(latents.shape, generator=generator, device=device, dtype=latents.dtype)
    context_noise = torch.randn(latents.shape, generator=generator, device=device, dtype=latents.dtype)
    actions = drop_actions(actions, cfg.action_dropout, generator)
    prediction = model(
        add_noise(latents, noise, t), t, actions,
        context=add_noise(clean_past, context_noise, context_t), context_levels=context_t,
    )
    return (prediction.float() - velocity_target(latents, noise).float()).pow(2).mean()
