"""Flow-matching math and the training loss (noise levels, context noise, action dropout)."""

import pytest
import torch

from gameworld.diffusion import (
    FlowMatchingConfig,
    add_noise,
    drop_actions,
    flow_matching_loss,
    sample_noise_levels,
    velocity_target,
)


class Recorder(torch.nn.Module):
    """A stand-in model that remembers its inputs and predicts a constant velocity."""

    def __init__(self, value: float = 0.0) -> None:
        super().__init__()
        self.value = value
        self.calls = []

    def forward(self, latents, noise_levels, actions):
        self.calls.append((latents, noise_levels, actions))
        return torch.full_like(latents, self.value)


def test_noisy_latents_follow_the_straight_path():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(2, 3, 4, 2, 2, generator=g), torch.randn(2, 3, 4, 2, 2, generator=g)
    zeros, ones = torch.zeros(2, 3), torch.ones(2, 3)
    assert torch.equal(add_noise(x0, eps, zeros), x0)
    assert torch.equal(add_noise(x0, eps, ones), eps)
    t = torch.rand(2, 3, generator=g)
    dt = 1e-3
    derivative = (add_noise(x0, eps, t + dt) - add_noise(x0, eps, t)) / dt
    assert torch.allclose(derivative, velocity_target(x0, eps), atol=1e-2)
    # each frame gets its own level
    mixed = add_noise(x0, eps, torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]]))
    assert torch.equal(mixed[0, 1], eps[0, 1]) and torch.equal(mixed[1, 1], x0[1, 1])


def test_noise_levels_are_logit_normal_per_frame_and_seeded():
    a = sample_noise_levels(400, 50, torch.Generator().manual_seed(1), mean=0.5, std=0.8)
    b = sample_noise_levels(400, 50, torch.Generator().manual_seed(1), mean=0.5, std=0.8)
    assert torch.equal(a, b) and a.shape == (400, 50)
    assert ((a > 0) & (a < 1)).all()
    logits = torch.logit(a.double())
    assert abs(logits.mean().item() - 0.5) < 0.02 and abs(logits.std().item() - 0.8) < 0.02
    assert (a[:, 0] != a[:, 1]).all()  # independent per frame


def test_action_dropout_zeroes_whole_frames_at_the_given_rate():
    actions = torch.ones(200, 50, 7)
    dropped = drop_actions(actions, 0.3, torch.Generator().manual_seed(2))
    per_frame = dropped.sum(-1)
    assert set(per_frame.unique().tolist()) == {0.0, 7.0}
    assert abs((per_frame == 0).float().mean().item() - 0.3) < 0.02
    assert drop_actions(actions, 0.0) is actions


def test_context_frames_get_small_noise_and_no_loss():
    cfg = FlowMatchingConfig(
        context_prob=1.0, context_noise_max=0.05, context_loss_weight=0.0, action_dropout=0.0
    )
    model = Recorder()
    latents = torch.randn(64, 6, 2, 2, 2)
    flow_matching_loss(model, latents, torch.ones(64, 6, 3), cfg, torch.Generator().manual_seed(3))
    _, levels, actions = model.calls[0]
    assert torch.equal(actions, torch.ones(64, 6, 3))
    assert (levels[:, 0] <= 0.05).all()  # the first frame is always context
    split = (levels > 0.05).float().argmax(dim=1)  # first new frame (logit-normal levels above 0.05)
    assert len(set(split.tolist())) > 3  # the split point varies across clips

    # a model that is exact on new frames and wrong on context frames has zero loss
    class ExactOnNewFrames(torch.nn.Module):
        def forward(self, noisy, levels, actions):
            target = velocity_target(
                latents,
                (noisy - (1 - levels[..., None, None, None]) * latents) / levels[..., None, None, None],
            )
            return torch.where((levels <= 0.05)[..., None, None, None], target + 10.0, target)

    loss = flow_matching_loss(
        ExactOnNewFrames(), latents, torch.ones(64, 6, 3), cfg, torch.Generator().manual_seed(3)
    )
    assert loss.item() < 1e-6
    counted = FlowMatchingConfig(
        context_prob=1.0, context_noise_max=0.05, context_loss_weight=1.0, action_dropout=0
    )
    loss = flow_matching_loss(
        ExactOnNewFrames(), latents, torch.ones(64, 6, 3), counted, torch.Generator().manual_seed(3)
    )
    assert loss.item() > 10.0


def test_loss_of_a_zero_model_is_the_velocity_variance_and_is_seeded():
    cfg = FlowMatchingConfig(context_prob=0.0, action_dropout=0.5)
    latents = 2.0 * torch.randn(32, 4, 4, 4, 4, generator=torch.Generator().manual_seed(4))
    model = Recorder()
    a = flow_matching_loss(model, latents, torch.ones(32, 4, 3), cfg, torch.Generator().manual_seed(5))
    b = flow_matching_loss(model, latents, torch.ones(32, 4, 3), cfg, torch.Generator().manual_seed(5))
    assert a.item() == b.item()
    assert abs(a.item() - (1.0 + latents.pow(2).mean().item())) < 0.15  # E|eps - x0|^2 = 1 + E|x0|^2
    dropped = model.calls[0][2].sum(-1) == 0
    assert 0.3 < dropped.float().mean().item() < 0.7


def test_teacher_forcing_gives_every_frame_a_clean_past_and_a_loss():
    cfg = FlowMatchingConfig(teacher_forcing=1.0, context_noise_max=0.05, action_dropout=0.0)
    latents = torch.randn(64, 6, 2, 2, 2, generator=torch.Generator().manual_seed(6))
    calls = []

    class ExactGivenTheContext(torch.nn.Module):
        """Exact velocity for every noisy frame, if the context is the clip at small noise."""

        def forward(self, noisy, levels, actions, context=None, context_levels=None):
            calls.append((levels, context, context_levels))
            t = levels[..., None, None, None]
            return velocity_target(latents, (noisy - (1 - t) * latents) / t)

    loss = flow_matching_loss(
        ExactGivenTheContext(), latents, torch.ones(64, 6, 3), cfg, torch.Generator().manual_seed(7)
    )
    assert loss.item() < 1e-6
    levels, context, context_levels = calls[0]
    assert (context_levels <= 0.05).all() and (levels > 0.05).float().mean() > 0.9  # all frames are new
    assert (context - latents).abs().max() < 0.05 * 10  # a lightly noised copy of the clip
    assert not torch.allclose(context, latents)

    off = FlowMatchingConfig(teacher_forcing=0.0)
    flow_matching_loss(Recorder(), latents, torch.ones(64, 6, 3), off, torch.Generator().manual_seed(7))
    half = FlowMatchingConfig(teacher_forcing=0.5)
    used = []
    for seed in range(40):
        calls.clear()
        model = ExactGivenTheContext()
        flow_matching_loss(model, latents, torch.ones(64, 6, 3), half, torch.Generator().manual_seed(seed))
        used.append(calls[0][1] is not None)
    assert 10 < sum(used) < 30  # about half the batches


def test_a_given_context_is_the_clean_past_of_every_frame_and_the_clip_stays_the_target():
    cfg = FlowMatchingConfig(teacher_forcing=0.0, context_noise_max=0.0, action_dropout=0.0)
    latents = torch.randn(64, 6, 2, 2, 2, generator=torch.Generator().manual_seed(8))
    rollout = latents + 3.0  # another past: a model's rollout of the same actions, say
    calls = []

    class ExactFromItsContext(torch.nn.Module):
        """The exact velocity toward (context + offset): right only if the targets are the clip."""

        def __init__(self, offset: float) -> None:
            super().__init__()
            self.offset = offset

        def forward(self, noisy, levels, actions, context=None, context_levels=None):
            calls.append((context, context_levels))
            t = levels[..., None, None, None]
            target = context + self.offset
            return velocity_target(target, (noisy - (1 - t) * target) / t)

    def loss(offset: float, past: torch.Tensor) -> float:
        model = ExactFromItsContext(offset)
        return flow_matching_loss(model, latents, torch.ones(64, 6, 3), cfg, torch.Generator().manual_seed(9),
                                  context=past).item()

    assert loss(-3.0, rollout) < 1e-8  # the targets are the clip, and teacher_forcing=0 does not matter
    context, context_levels = calls[-1]
    assert torch.equal(context, rollout) and not context_levels.any()
    assert loss(0.0, rollout) > 5.0  # predicting the rollout itself is wrong by 3 everywhere
    with pytest.raises(ValueError, match=r"context \(64, 5, 2, 2, 2\) must have the shape of latents"):
        loss(0.0, rollout[:, :5])


@pytest.mark.parametrize(
    "bad", [dict(context_prob=1.5), dict(action_dropout=-0.1), dict(noise_std=0.0), dict(teacher_forcing=2.0)]
)
def test_bad_config_is_refused(bad):
    with pytest.raises(ValueError, match="FlowMatchingConfig"):
        FlowMatchingConfig(**bad)
