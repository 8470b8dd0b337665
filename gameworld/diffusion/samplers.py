"""Few-step samplers that denoise new frames against a model's KV cache.

`sample_frames` draws N new frames (all at the same noise level at each step) from pure noise at
t = 1 down to t = 0 with Euler or Heun over `steps` steps on a shifted time grid, then (optionally)
commits them to the cache re-noised to `context_noise`, the small level context frames are held
at (the model was trained with context frames at such levels: see `flow.py`).

Action guidance (classifier-free): v = v(no action) + guidance * (v(action) - v(no action)), with
"no action" the zero vector the model saw under action dropout; guidance = 1 turns it off.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gameworld.diffusion.flow import add_noise
from gameworld.models.dit import NextFrameDiT
from gameworld.models.kv_cache import KVCache

SAMPLERS = ("euler", "heun")


def time_schedule(steps: int, shift: float = 1.0, device: torch.device | str | None = None) -> torch.Tensor:
    """steps + 1 noise levels from 1 to 0; shift > 1 spends more of the steps at high noise (SD3)."""
    if steps < 1 or shift <= 0:
        raise ValueError(f"need steps >= 1 and shift > 0, got steps={steps}, shift={shift}")
    t = torch.linspace(1.0, 0.0, steps + 1, device=device)
    return shift * t / (1 + (shift - 1) * t)


def integrate(
    velocity: Callable[[torch.Tensor, float], torch.Tensor],
    x: torch.Tensor,
    schedule: torch.Tensor,
    sampler: str,
) -> torch.Tensor:
    """Integrate dx/dt = velocity(x, t) along `schedule` (1 -> 0); Heun's last step to t = 0 is Euler."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}")
    levels = schedule.tolist()
    for t, t_next in zip(levels[:-1], levels[1:], strict=True):
        v = velocity(x, t)
        x_next = x + (t_next - t) * v
        if sampler == "heun" and t_next > 0:
            x_next = x + (t_next - t) * 0.5 * (v + velocity(x_next, t_next))
        x = x_next
    return x


@torch.no_grad()
def commit_frames(
    model: NextFrameDiT,
    cache: KVCache,
    latents: torch.Tensor,
    actions: torch.Tensor,
    context_noise: float = 0.02,
    generator: torch.Generator | None = None,
) -> None:
    """Commit clean latents [B, N, C, h, w] (with their actions) to the cache at the context noise level."""
    if not 0.0 <= context_noise < 1.0:
        raise ValueError(f"context_noise must be in [0, 1), got {context_noise}")
    levels = torch.full(latents.shape[:2], context_noise, device=latents.device)
    noise = torch.randn(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
    model.forward_step(add_noise(latents, noise, levels), levels, actions, cache, write=True)


@torch.no_grad()
def sample_frames(
    model: NextFrameDiT,
    cache: KVCache,
    actions: torch.Tensor,
    steps: int = 4,
    sampler: str = "euler",
    shift: float = 1.0,
    context_noise: float = 0.02,
    guidance: float = 1.0,
    generator: torch.Generator | None = None,
    commit: bool = True,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Denoise N new frames for actions [B, N, A] after the cache's frames -> latents [B, N, C, h, w].

    With `commit=True` they become the cache's next N frames (at `context_noise`).
    """
    cfg = model.config
    batch, count = actions.shape[:2]
    shape = (batch, count, cfg.in_channels, cfg.latent_height, cfg.latent_width)
    device, dtype = model.device, model.dtype
    if noise is None:
        noise = torch.randn(shape, generator=generator, device=device, dtype=dtype)
    elif tuple(noise.shape) != shape:
        raise ValueError(f"noise must have shape {shape}, got {tuple(noise.shape)}")
    actions = actions.to(device=device, dtype=dtype)
    no_action = torch.zeros_like(actions)

    def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
        levels = torch.full((batch, count), t, device=device)
        v = model.forward_step(x, levels, actions, cache)
        if guidance != 1.0:
            v_free = model.forward_step(x, levels, no_action, cache)
            v = v_free + guidance * (v - v_free)
        return v

    latents = integrate(velocity, noise, time_schedule(steps, shift), sampler)
    if commit:
        commit_frames(model, cache, latents, actions, context_noise, generator)
    return latents


@torch.no_grad()
def rollout_latents(
    model: NextFrameDiT,
    latents: torch.Tensor,
    actions: torch.Tensor,
    frames: int,
    steps: int,
    context_noise: float = 0.02,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Clips latents [B, T, C, h, w] with frames 1 .. frames - 1 replaced by `model`'s own rollout.

    The rollout starts from frame 0 and plays the clip's actions [B, T, A] with `steps` Euler steps
    a frame: the context a model meets at inference, its own errors included (training on it
    teaches a model to recover from them).
    """
    if not 1 <= frames <= latents.shape[1]:
        raise ValueError(f"frames must be in [1, {latents.shape[1]}], got {frames}")
    cache = model.new_cache(latents.shape[0], device=latents.device, dtype=latents.dtype)
    out = latents.clone()
    commit_frames(model, cache, latents[:, :1], actions[:, :1], context_noise, generator)
    for index in range(1, frames):
        out[:, index : index + 1] = sample_frames(
            model, cache, actions[:, index : index + 1], steps=steps, context_noise=context_noise,
            generator=generator,
        )
    return out
