"""Samplers: time grid, exactness on a known flow, sampling against the cache, guidance, commits, rollouts."""

import pytest
import torch
from test_model_dit import random_model

from gameworld.diffusion import (
    add_noise,
    commit_frames,
    integrate,
    rollout_latents,
    sample_frames,
    time_schedule,
)


def test_time_schedule_runs_from_one_to_zero_and_shifts_toward_noise():
    plain = time_schedule(4)
    assert torch.allclose(plain, torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))
    shifted = time_schedule(4, shift=3.0)
    assert shifted[0] == 1.0 and shifted[-1] == 0.0
    assert (shifted[1:-1] > plain[1:-1]).all() and (shifted[1:] < shifted[:-1]).all()
    with pytest.raises(ValueError, match="steps >= 1"):
        time_schedule(0)


@pytest.mark.parametrize("sampler", ["euler", "heun"])
@pytest.mark.parametrize("steps", [1, 3])
def test_samplers_land_exactly_on_a_single_data_point(sampler, steps):
    # For data = one point x0 the true velocity is (x_t - x0) / t; both samplers follow it exactly.
    x0 = torch.tensor([0.3, -1.2, 2.0])
    calls = []

    def velocity(x, t):
        calls.append(t)
        return (x - x0) / t

    result = integrate(velocity, torch.randn(3), time_schedule(steps, shift=2.0), sampler)
    assert torch.allclose(result, x0, atol=1e-5)
    assert len(calls) == (steps if sampler == "euler" else 2 * steps - 1)
    with pytest.raises(ValueError, match="unknown sampler 'ddim'"):
        integrate(velocity, torch.randn(3), time_schedule(2), "ddim")


@torch.no_grad()
def test_sample_frames_is_seeded_and_commits_only_when_asked():
    model = random_model(max_frames=4)
    actions = torch.randn(1, 2, model.config.action_dim)
    cache = model.new_cache(1, extra_frames=2)
    a = sample_frames(
        model, cache, actions, steps=2, generator=torch.Generator().manual_seed(0), commit=False
    )
    assert cache.num_frames == 0
    b = sample_frames(model, cache, actions, steps=2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and cache.num_frames == 2
    c = sample_frames(
        model, cache, actions, steps=2, generator=torch.Generator().manual_seed(0), commit=False
    )
    assert not torch.allclose(b, c)  # the next frames see the committed ones
    assert torch.isfinite(c).all()


@torch.no_grad()
def test_commit_stores_frames_at_the_context_noise_level():
    model = random_model(max_frames=4)
    latents = torch.randn(1, 2, 4, 4, 6)
    actions = torch.randn(1, 2, model.config.action_dim)
    committed = model.new_cache(1)
    commit_frames(
        model, committed, latents, actions, context_noise=0.1, generator=torch.Generator().manual_seed(1)
    )
    manual = model.new_cache(1)
    levels = torch.full((1, 2), 0.1)
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(1))
    model.forward_step(add_noise(latents, noise, levels), levels, actions, manual, write=True)
    assert torch.equal(committed.keys, manual.keys) and committed.num_frames == 2
    with pytest.raises(ValueError, match="context_noise"):
        commit_frames(model, committed, latents, actions, context_noise=1.0)


@torch.no_grad()
def test_guidance_mixes_with_the_no_action_prediction():
    model = random_model(max_frames=4)
    actions = torch.randn(1, 1, model.config.action_dim)
    noise = torch.randn(1, 1, 4, 4, 6)
    cache = model.new_cache(1)
    commit_frames(
        model, cache, torch.randn(1, 1, 4, 4, 6), actions, generator=torch.Generator().manual_seed(2)
    )

    def sample(acts, guidance):
        return sample_frames(model, cache, acts, steps=2, guidance=guidance, noise=noise, commit=False)

    # guidance 0 keeps only the no-action branch: the same as sampling with zero actions
    assert torch.allclose(sample(actions, 0.0), sample(torch.zeros_like(actions), 1.0), atol=1e-6)
    conditional, free, guided = sample(actions, 1.0), sample(actions, 0.0), sample(actions, 3.0)
    assert not torch.allclose(conditional, guided)
    # one Euler step from t = 1 is linear in the velocity: guided = free + 3 (conditional - free)
    one_step = [
        sample_frames(model, cache, actions, steps=1, guidance=g, noise=noise, commit=False)
        for g in (0, 1, 3)
    ]
    assert torch.allclose(one_step[2], one_step[0] + 3.0 * (one_step[1] - one_step[0]), atol=1e-5)
    assert free.shape == conditional.shape


@torch.no_grad()
def test_a_rollout_starts_from_the_first_frame_and_plays_the_clips_actions():
    model = random_model(max_frames=4)
    latents = torch.randn(2, 6, 4, 4, 6, generator=torch.Generator().manual_seed(2))
    actions = torch.randn(2, 6, model.config.action_dim, generator=torch.Generator().manual_seed(3))

    def roll(clip: torch.Tensor, acts: torch.Tensor, frames: int = 5) -> torch.Tensor:
        return rollout_latents(model, clip, acts, frames, steps=2, generator=torch.Generator().manual_seed(4))

    out = roll(latents, actions)  # past the 4-frame window
    assert torch.equal(out[:, 0], latents[:, 0]) and torch.equal(out[:, 5:], latents[:, 5:])
    assert torch.isfinite(out).all() and (out[:, 1:5] - latents[:, 1:5]).abs().mean() > 0.1
    other = latents.clone()
    other[:, 1:] = torch.randn(other[:, 1:].shape)
    assert torch.equal(roll(other, actions), torch.cat([out[:, :5], other[:, 5:]], dim=1))  # frame 0 only
    changed = actions.clone()
    changed[:, 3] += 1.0
    moved = roll(latents, changed)
    assert torch.equal(moved[:, :3], out[:, :3]) and not torch.allclose(moved[:, 3:5], out[:, 3:5])
    with pytest.raises(ValueError, match=r"frames must be in \[1, 6\], got 7"):
        roll(latents, actions, frames=7)
