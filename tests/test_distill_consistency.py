"""Consistency-distillation math: TrigFlow conversions, the sCM and discrete CD losses on a toy problem
with a closed-form ODE, the JVP through NextFrameDiT against finite differences, the critic heads."""

import math

import pytest
import torch

from gameworld.diffusion import add_noise, velocity_target
from gameworld.diffusion.consistency import (
    ConsistencyConfig,
    DistillClip,
    consistency_function,
    discrete_cd_loss,
    discrete_grid,
    flow_to_trig,
    guided_teacher,
    make_clip,
    scm_loss,
    segment_start,
    student_tangent,
    trig_model,
    trig_to_flow,
    trig_velocity,
)
from gameworld.models import NextFrameDiT
from gameworld.models.discriminator import TeacherDiscriminator

pytestmark = pytest.mark.usefixtures("torch_single_thread")
SHAPE = (2, 4, 3, 4, 4)  # [B, T, C, h, w]


def gaussian_flow(mean: torch.Tensor, std: float):
    """Exact (teacher velocity, consistency-model velocity) for data x0 ~ N(mean, std^2) per element.

    Along an ODE trajectory x_t = (1 - t) mean + a(t) z with a(t)^2 = (1 - t)^2 std^2 + t^2 and z
    fixed, so the ODE ends at mean + std z. The mean depends on the frame's action (first entry).
    """

    def parts(x_t, t, actions):
        tt = t[..., None, None, None].to(x_t.dtype)
        mu = mean + actions[..., :1, None, None]  # [B, T, 1, 1, 1] + [C, h, w]
        spread = torch.sqrt((1 - tt) ** 2 * std**2 + tt**2)
        return tt, mu, spread, (x_t - (1 - tt) * mu) / spread

    def teacher(x_t, t, actions):
        tt, mu, spread, z = parts(x_t, t, actions)
        return -mu + ((tt - 1) * std**2 + tt) / spread * z

    def consistent(x_t, t, actions, segments=1):
        """Lands in one Euler step where the ODE is at the start b of t's segment (b = 0: f)."""
        tt, mu, _, z = parts(x_t, t, actions)
        b = segment_start(t, segments)[..., None, None, None].to(x_t.dtype)
        landing = (1 - b) * mu + torch.sqrt((1 - b) ** 2 * std**2 + b**2) * z
        return (x_t - landing) / (tt - b)

    return teacher, consistent


def toy_clip(seed=0, context_noise_max=0.05):
    generator = torch.Generator().manual_seed(seed)
    x0 = torch.randn(SHAPE, generator=generator, dtype=torch.float64)
    actions = torch.randn(SHAPE[0], SHAPE[1], 2, generator=generator, dtype=torch.float64)
    cfg = ConsistencyConfig(context_noise_max=context_noise_max, action_dropout=0.0)
    clip = make_clip(x0, actions, torch.tensor([1, 2]), cfg, generator)
    return DistillClip(clip.x0, clip.noise.double(), clip.t.double(), clip.actions, clip.moving.double()), cfg


def test_trigflow_conversions_agree_with_flow_matching():
    generator = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(SHAPE, generator=generator), torch.randn(SHAPE, generator=generator)
    t = torch.rand(SHAPE[:2], generator=generator)
    s = flow_to_trig(t)
    assert torch.allclose(trig_to_flow(s), t, atol=1e-6)
    assert float(s.min()) >= 0 and float(s.max()) <= math.pi / 2
    cos, sin = torch.cos(s)[..., None, None, None], torch.sin(s)[..., None, None, None]
    x_t = add_noise(x0, eps, t)
    x_s = (cos + sin) * x_t
    assert torch.allclose(x_s, cos * x0 + sin * eps, atol=1e-5)
    exact_v = velocity_target(x0, eps)
    assert torch.allclose(trig_velocity(x_s, s, exact_v), -sin * x0 + cos * eps, atol=1e-5)
    assert torch.allclose(consistency_function(x_t, t, exact_v), x0, atol=1e-5)
    assert torch.allclose(cos * x_s - sin * trig_velocity(x_s, s, exact_v), x0, atol=1e-5)


def test_scm_loss_is_zero_for_a_student_that_already_solves_the_teachers_ode():
    teacher, consistent = gaussian_flow(torch.linspace(-1, 1, 16).reshape(1, 4, 4).double(), std=0.5)
    clip, cfg = toy_clip()
    loss, figures, _ = scm_loss(consistent, consistent, teacher, clip, cfg, ramp=1.0)
    assert float(loss) < 1e-20 and float(figures["tangent_norm"]) < 1e-9
    # the teacher itself (a velocity field, not a consistency model) is not consistent
    wrong, figures, _ = scm_loss(teacher, teacher, teacher, clip, cfg, ramp=1.0)
    assert float(wrong) > 1e-3 and float(figures["tangent_norm"]) > 1e-2


def test_scm_loss_ignores_the_context_frames():
    teacher, consistent = gaussian_flow(torch.zeros(3, 4, 4, dtype=torch.float64), std=0.7)
    clip, cfg = toy_clip(seed=1, context_noise_max=0.0)  # t = 0 on context frames: v = (x - f) / 0 = nan
    loss, _, v = scm_loss(consistent, consistent, teacher, clip, cfg)
    assert not torch.isfinite(v[0, 0]).all()
    assert torch.isfinite(loss) and float(loss) < 1e-20


def test_discrete_cd_loss_is_near_zero_for_the_exact_student_and_not_for_the_teacher():
    teacher, consistent = gaussian_flow(torch.linspace(-1, 1, 16).reshape(1, 4, 4).double(), std=0.5)
    clip, cfg = toy_clip()
    cfg = ConsistencyConfig(method="discrete", discrete_intervals=32, action_dropout=0.0)
    clip = discrete_grid(clip, cfg.discrete_intervals, torch.Generator().manual_seed(3))
    moving = clip.moving.bool()
    n = clip.t[moving] * cfg.discrete_intervals
    assert torch.allclose(n, n.round()) and float(n.min()) >= 1 and float(n.max()) <= 32
    exact, _, _ = discrete_cd_loss(consistent, consistent, teacher, clip, cfg)
    wrong, _, _ = discrete_cd_loss(teacher, teacher, teacher, clip, cfg)
    assert float(exact) < 1e-3 * float(wrong), (float(exact), float(wrong))  # Heun steps: tiny solver error


def test_multistep_cd_is_near_zero_for_a_student_whose_euler_steps_land_on_the_ode():
    teacher, consistent = gaussian_flow(torch.linspace(-1, 1, 16).reshape(1, 4, 4).double(), std=0.5)
    starts = segment_start(torch.tensor([0.05, 0.25, 0.26, 0.5, 0.75, 1.0]), 4)
    assert starts.tolist() == [0, 0, 0.25, 0.25, 0.5, 0.75]
    clip, _ = toy_clip()
    cfg = ConsistencyConfig(method="discrete", discrete_intervals=32, segments=4, action_dropout=0.0)
    clip = discrete_grid(clip, cfg.discrete_intervals, torch.Generator().manual_seed(3))
    four_step = lambda x, t, a: consistent(x, t, a, segments=4)  # noqa: E731
    exact, _, _ = discrete_cd_loss(four_step, four_step, teacher, clip, cfg)
    one_step, _, _ = discrete_cd_loss(consistent, consistent, teacher, clip, cfg)
    assert float(exact) < 1e-3 * float(one_step), (float(exact), float(one_step))
    with pytest.raises(ValueError, match="multiple of segments"):
        ConsistencyConfig(discrete_intervals=10, segments=4)


def test_guided_distillation_targets_the_ode_of_the_guided_teacher():
    """In the toy, guidance w on the teacher is the plain ODE with the new frames' action scaled by w,
    so the exact student of the guided teacher is the consistent one fed w times those actions."""
    teacher, consistent = gaussian_flow(torch.linspace(-1, 1, 16).reshape(1, 4, 4).double(), std=0.5)
    clip, _ = toy_clip()
    w = 2.5
    scale = 1 + (w - 1) * clip.moving[..., None]  # [B, T, 1]: w on the new frames, 1 on the context
    guided = lambda x, t, a: consistent(x, t, a * scale)  # noqa: E731
    x_t, t, actions, context = clip.x_t, clip.t, clip.actions, ~clip.moving.bool()
    velocity = guided_teacher(teacher, w, clip.moving)
    assert torch.equal(velocity(x_t, t, actions)[context], teacher(x_t, t, actions)[context])
    assert not torch.allclose(velocity(x_t, t, actions), teacher(x_t, t, actions))
    assert guided_teacher(teacher, 1.0, clip.moving) is teacher
    discrete = ConsistencyConfig(method="discrete", discrete_intervals=32, action_dropout=0.0, guidance=w)
    on_grid = discrete_grid(clip, 32, torch.Generator().manual_seed(3))
    exact, _, _ = discrete_cd_loss(guided, guided, teacher, on_grid, discrete)
    unguided, _, _ = discrete_cd_loss(consistent, consistent, teacher, on_grid, discrete)
    assert float(exact) < 1e-3 * float(unguided), (float(exact), float(unguided))
    scm = ConsistencyConfig(action_dropout=0.0, guidance=w)
    exact, _, _ = scm_loss(guided, guided, teacher, clip, scm, ramp=1.0)
    unguided, _, _ = scm_loss(consistent, consistent, teacher, clip, scm, ramp=1.0)
    assert float(exact) < 1e-12 and float(unguided) > 1e-3, (float(exact), float(unguided))


def tiny_dit(backend="sdpa"):
    torch.manual_seed(0)
    model = NextFrameDiT(in_channels=3, latent_height=4, latent_width=4, action_dim=2, patch_size=2,
                         hidden_size=32, depth=2, num_heads=2, max_frames=4, attention_backend=backend)
    with torch.no_grad():
        for param in model.parameters():  # adaLN-zero and the output start at zero: wake them up
            param.add_(0.1 * torch.randn_like(param))
    return model.double()


def test_jvp_through_the_model_matches_finite_differences():
    model = tiny_dit()
    generator = torch.Generator().manual_seed(0)
    x_s = torch.randn(SHAPE, generator=generator, dtype=torch.float64)
    s = torch.rand(SHAPE[:2], generator=generator, dtype=torch.float64) * 1.4 + 0.05
    actions = torch.randn(SHAPE[0], SHAPE[1], 2, generator=generator, dtype=torch.float64)
    moving = torch.tensor([[0, 1, 1, 1], [0, 0, 0, 1]], dtype=torch.float64)  # context frames fixed
    dx = torch.randn(SHAPE, generator=generator, dtype=torch.float64) * moving[..., None, None, None]
    velocity = trig_model(model, actions)

    def finite_difference(dx, ds, h):
        with torch.no_grad():
            return (velocity(x_s + h * dx, s + h * ds) - velocity(x_s - h * dx, s - h * ds)) / (2 * h)

    def relative_error(a, b):
        return float((a - b).norm() / b.norm())

    # (the model normalises in float32 and embeds sin/cos(1000 t) in float32: steps h fit that)
    value, along_x = student_tangent(model, x_s, s, actions, dx, torch.zeros_like(moving))
    with torch.no_grad():
        assert torch.allclose(value, velocity(x_s, s), atol=1e-12)
    assert relative_error(along_x, finite_difference(dx, 0 * moving, 1e-3)) < 1e-4
    _, tangent = student_tangent(model, x_s, s, actions, dx, moving)
    assert relative_error(tangent, finite_difference(dx, moving, 5e-5)) < 3e-3
    assert relative_error(tangent, along_x) > 0.1  # the noise levels' motion matters
    assert tangent[1, :3].abs().max() == 0  # block-causal: frames before the only moving one do not move
    assert tangent[1, 3].abs().max() > 1e-3


def test_the_jvp_falls_back_to_math_sdpa_for_flex_and_restores_the_backend():
    model = tiny_dit("flex")
    x_s = torch.randn(SHAPE, dtype=torch.float64)
    s = torch.full(SHAPE[:2], 0.7, dtype=torch.float64)
    actions = torch.zeros(SHAPE[0], SHAPE[1], 2, dtype=torch.float64)
    moving = torch.ones(SHAPE[:2], dtype=torch.float64)
    _, tangent = student_tangent(model, x_s, s, actions, torch.zeros_like(x_s), moving)
    assert model.attention_backend == "flex" and torch.isfinite(tangent).all()


def test_critic_heads_score_frames_and_frozen_heads_pass_gradients_to_the_input_only():
    teacher = tiny_dit().float().requires_grad_(False)
    critic = TeacherDiscriminator(hidden_size=32, layers=[0, -1], depth=2)
    assert critic.layers == [0, 1]
    x = torch.randn(2, 3, 3, 4, 4, requires_grad=True)
    levels, actions = torch.rand(2, 3), torch.randn(2, 3, 2)
    features = critic.features(teacher, x, levels, actions)
    assert [tuple(f.shape) for f in features] == [(2, 3, 4, 32)] * 2
    assert not any(block._forward_hooks for block in teacher.blocks)
    frozen = critic.logits(features, frozen_heads=True)
    assert frozen.shape == (2, 3) and torch.allclose(frozen, critic.logits(features))
    frozen.sum().backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is None for p in critic.parameters())
    with pytest.raises(ValueError, match="block indices"):
        TeacherDiscriminator(hidden_size=32, layers=[5], depth=2)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="method"):
        ConsistencyConfig(method="lcm")
    with pytest.raises(ValueError, match="context_noise_max"):
        ConsistencyConfig(context_noise_max=2.0)
    with pytest.raises(ValueError, match="guidance"):
        ConsistencyConfig(guidance=-1.0)
    assert ConsistencyConfig(tangent_warmup_steps=10).tangent_ramp(5) == 0.5
