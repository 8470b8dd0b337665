"""Consistency distillation of a flow-matching world model: TrigFlow view, sCM loss, discrete CD.

**TrigFlow and our flow matching.** We train with x_t = (1 - t) x0 + t eps and v = eps - x0
(`flow.py`). TrigFlow (Lu & Song 2024, sCM) writes the same path as x_s = cos(s) x0 + sin(s) eps,
s in [0, pi/2] (sigma_d = 1: our latents are scaled to unit variance). Both are one path up to a
scale: with k(s) = cos(s) + sin(s),

    x_s = k(s) x_t,      t = sin(s) / k(s)   (tan(s) = t / (1 - t)),

so a log-normal proposal on tan(s) is exactly our logit-normal proposal on t. The TrigFlow velocity
follows from x0 = x_t - t v and eps = x_t + (1 - t) v:

    F = dx_s/ds = -sin(s) x0 + cos(s) eps = ((cos(s) - sin(s)) x_s + v(x_t, t)) / k(s),

and the consistency function cos(s) x_s - sin(s) F is, in flow-matching terms, x_t - t v: the
x0 prediction, which is what one Euler step from t to 0 returns. So a student keeps the
architecture and parameterisation of the teacher (it still outputs v) and samples with the
ordinary Euler sampler in 1-4 steps.

**sCM (method "scm").** The student's consistency function f must stay constant along the teacher's
ODE. With stop-gradient weights theta-, the training target is the tangent

    g = -cos^2(s) (F- - dx_s/ds) - r cos(s) sin(s) (x_s + dF-/ds)  ( = cos(s) df-/ds for r = 1 ),

normalised per frame, g / (||g|| + c), and the loss ||F_theta - F- - g||^2 whose gradient is that
of the continuous-time consistency objective. dx_s/ds is the teacher's velocity; dF-/ds is the
total derivative of the student along the ODE, one forward-mode JVP (`torch.func.jvp`) in the
direction (dx_s/ds, ds = 1) per moving frame. r ramps from 0 to 1 ("tangent warmup").

**Per-frame time.** Every frame has its own s. A clip is split at a random frame: frames before it
are context (real, or the student's own rollout), held at a small noise level and *fixed* (zero
tangent in x and s); each frame after it moves along its own ODE with its own s, the JVP carrying
the block-causal influence of moving earlier frames on later ones.

**Discrete CD (method "discrete", LCM-style).** On a grid of N intervals in t, the teacher takes one
Heun step from t_n to t_(n-1) and the student is pulled towards its own (stop-gradient) prediction
there: ||f_theta(x_tn, t_n) - f-(x_t(n-1), t_(n-1))||^2, with f = x at t = 0. No JVP. With
`segments` K > 1 it is multistep CD (Heek et al. 2024): the student's Euler step must land on the
teacher's ODE at the start of each of K segments, so K Euler steps of the engine's sampler are
exact for a perfect student (plain CD makes f exact, and Euler re-noising with the implied eps
then leaves the ODE).

**Guided distillation.** With `guidance` w != 1 the student follows the ODE of the teacher under
classifier-free action guidance, v(no action) + w (v(action) - v(no action)), as guided diffusion
models are distilled (Meng et al. 2023; LCM): one student call then gives what the guided teacher
gives with two, and a few-step student, which does not take guidance well at sampling time, keeps
the stronger response to the actions. "No action" zeroes the actions of the moving frames only;
the context keeps its own, as in `sample_frames`.

**JVP and attention kernels.** Forward-mode AD runs through PyTorch's math SDPA kernel only: the
CPU flash kernel raises NotImplementedError and FlexAttention (a higher-order op) cannot be
JVP'd at all (torch 2.13). `jvp_attention` therefore switches a model to the math SDPA kernel for
the JVP and back; the gradient-carrying forward keeps the fast backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch.func import jvp
from torch.nn.attention import SDPBackend, sdpa_kernel

from gameworld.diffusion.flow import _frame_axes, add_noise, drop_actions, sample_noise_levels

METHODS = ("scm", "discrete")
# Velocity model: (latents [B, T, C, h, w], noise levels t [B, T], actions [B, T, A]) -> v [B, T, C, h, w]
VelocityModel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
T_EPS = 1e-4  # new frames' t is kept in [T_EPS, 1 - T_EPS]: s strictly inside (0, pi/2)


@dataclass
class ConsistencyConfig:
    method: str = "scm"  # "scm" (continuous time, JVP) or "discrete" (LCM-style, teacher ODE steps)
    noise_mean: float = 0.8  # logit-normal location of the new frames' t (= log-normal of tan(s))
    noise_std: float = 1.6  # logit-normal scale
    min_context: int = 1  # clips are split at k in [min_context, T - 1]: frames < k are context
    context_noise_max: float = 0.05  # context frames are held at t ~ U(0, context_noise_max)
    tangent_norm: float = 0.1  # c in g / (||g|| + c), per frame
    tangent_warmup_steps: int = 100  # r in the tangent ramps linearly from 0 to 1 over these steps
    discrete_intervals: int = 16  # discrete CD: N intervals of the t grid (a multiple of `segments`)
    segments: int = 1  # discrete CD: K, the Euler steps the student is made for (multistep CD)
    action_dropout: float = 0.1  # as in training: the student keeps the teacher's "no action" ODE
    guidance: float = 1.0  # w of the teacher's classifier-free action guidance (1 = off)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"ConsistencyConfig.method must be one of {METHODS}, got {self.method!r}")
        if self.noise_std <= 0 or self.tangent_norm < 0 or self.tangent_warmup_steps < 0:
            raise ValueError(f"ConsistencyConfig needs noise_std > 0, tangent_norm >= 0 and "
                             f"tangent_warmup_steps >= 0: {self}")
        if self.min_context < 0 or self.segments < 1 or self.discrete_intervals % self.segments:
            raise ValueError(f"ConsistencyConfig needs min_context >= 0, segments >= 1 and "
                             f"discrete_intervals "
                             f"a multiple of segments: {self}")
        if self.guidance < 0:
            raise ValueError(f"ConsistencyConfig.guidance must be >= 0, got {self.guidance}")
        for name in ("context_noise_max", "action_dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"ConsistencyConfig.{name} must be in [0, 1], got {getattr(self, name)}")

    def tangent_ramp(self, step: int) -> float:
        """r of the tangent warmup at optimizer step `step`."""
        return 1.0 if self.tangent_warmup_steps == 0 else min(1.0, step / self.tangent_warmup_steps)


# ----------------------------------------------------------------------------------- TrigFlow


def flow_to_trig(t: torch.Tensor) -> torch.Tensor:
    """Flow-matching time t in [0, 1] -> TrigFlow time s = atan(t / (1 - t)) in [0, pi/2]."""
    return torch.atan2(t, 1 - t)


def trig_to_flow(s: torch.Tensor) -> torch.Tensor:
    """TrigFlow time s -> flow-matching time t = sin(s) / (cos(s) + sin(s))."""
    return torch.sin(s) / (torch.cos(s) + torch.sin(s))


def trig_velocity(x_s: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """TrigFlow velocity dx_s/ds of x_s [B, T, C, h, w] at s [B, T] from the flow velocity v."""
    cos, sin = _frame_axes(torch.cos(s), x_s), _frame_axes(torch.sin(s), x_s)
    return ((cos - sin) * x_s + v) / (cos + sin)


def trig_model(
    model: VelocityModel, actions: torch.Tensor
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A flow-matching velocity model as TrigFlow's F(x_s, s) (differentiable in x_s and s)."""

    def velocity(x_s: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        scale = _frame_axes(torch.cos(s) + torch.sin(s), x_s)
        return trig_velocity(x_s, s, model(x_s / scale, trig_to_flow(s), actions))

    return velocity


def guided_teacher(teacher: VelocityModel, guidance: float, moving: torch.Tensor) -> VelocityModel:
    """`teacher` under classifier-free action guidance of weight `guidance` on the moving frames
    (`moving` [B, T], 1 for new frames); `teacher` itself when guidance is 1."""
    if guidance == 1.0:
        return teacher

    def velocity(x_t: torch.Tensor, t: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        conditional = teacher(x_t, t, actions)
        no_action = actions * (1 - moving.to(actions.dtype))[..., None]  # the context keeps its actions
        free = teacher(x_t, t, no_action)
        return free + guidance * (conditional - free)

    return velocity


def consistency_function(x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """f = x_t - t v: the clean frames a (consistency) model predicts; equals cos(s) x_s - sin(s) F.

    Exactly x_t where t = 0 (the boundary condition), whatever v is there.
    """
    tt = _frame_axes(t, x_t)
    return torch.where(tt > 0, x_t - tt * v, x_t)


@contextmanager
def jvp_attention(model: torch.nn.Module) -> Iterator[None]:
    """Run `model` (a NextFrameDiT, or anything without an attention switch) with the math SDPA
    kernel, the one attention kernel forward-mode AD goes through."""
    backend = getattr(model, "attention_backend", None)
    if backend is not None and backend != "sdpa":
        model.set_attention_backend("sdpa")
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        if backend is not None and backend != "sdpa":
            model.set_attention_backend(backend)


def student_tangent(
    student: VelocityModel, x_s: torch.Tensor, s: torch.Tensor, actions: torch.Tensor, dx_ds: torch.Tensor,
    moving: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(F, dF/ds) of `student` at (x_s, s) along the direction (dx_ds, moving): one JVP, no graph.

    `moving` [B, T] is 1 for frames that move along their ODE (their s advances at unit rate) and
    0 for fixed context frames; dx_ds [B, T, C, h, w] must be zero on the fixed ones.
    """
    with torch.no_grad(), jvp_attention(student):
        return jvp(trig_model(student, actions), (x_s, s), (dx_ds, moving.to(s.dtype)))


# ----------------------------------------------------------------------------------- clips


@dataclass
class DistillClip:
    """One batch of clips laid out for distillation: fixed context frames, then moving new frames."""

    x0: torch.Tensor  # [B, T, C, h, w] clean latents (context: real or rolled out by the student)
    noise: torch.Tensor  # [B, T, C, h, w]
    t: torch.Tensor  # [B, T] flow-matching noise level of every frame
    actions: torch.Tensor  # [B, T, A] (after action dropout)
    moving: torch.Tensor  # [B, T] float: 1 for new frames, 0 for context frames

    @property
    def x_t(self) -> torch.Tensor:
        return add_noise(self.x0, self.noise, self.t)

    def with_t(self, t: torch.Tensor) -> DistillClip:
        return DistillClip(self.x0, self.noise, t, self.actions, self.moving)


def split_points(batch: int, frames: int, cfg: ConsistencyConfig, generator: torch.Generator | None,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """[B] index of the first new frame of each clip, uniform in [min_context, T - 1]."""
    low = min(cfg.min_context, frames - 1)
    return torch.randint(low, frames, (batch,), generator=generator, device=device)


def make_clip(
    x0: torch.Tensor, actions: torch.Tensor, split: torch.Tensor, cfg: ConsistencyConfig,
    generator: torch.Generator | None = None,
) -> DistillClip:
    """Noise levels and noise for latents x0 [B, T, C, h, w]: context frames (< split [B]), then new ones."""
    batch, frames = x0.shape[:2]
    device = x0.device
    moving = (torch.arange(frames, device=device)[None] >= split[:, None]).float()  # [B, T]
    new_t = sample_noise_levels(batch, frames, generator, cfg.noise_mean, cfg.noise_std, device)
    context_t = torch.rand(batch, frames, generator=generator, device=device) * cfg.context_noise_max
    t = torch.where(moving.bool(), new_t.clamp(T_EPS, 1 - T_EPS), context_t)
    noise = torch.randn(x0.shape, generator=generator, device=device, dtype=x0.dtype)
    return DistillClip(x0, noise, t, drop_actions(actions, cfg.action_dropout, generator), moving)


def _only_moving(values: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
    """values [B, T, ...] with the fixed frames set to zero (`where`, so a non-finite value there goes)."""
    return torch.where(_frame_axes(moving, values).bool(), values, torch.zeros((), dtype=values.dtype))


def _per_frame_mean(values: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
    """Mean over the moving frames of per-element values [B, T, ...]."""
    per_frame = _only_moving(values.flatten(2).mean(-1), moving)  # [B, T]
    return per_frame.sum() / moving.sum().clamp_min(1)


# ----------------------------------------------------------------------------------- losses


def scm_loss(
    model: VelocityModel, student: VelocityModel, teacher: VelocityModel, clip: DistillClip,
    cfg: ConsistencyConfig, ramp: float = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """Continuous-time consistency loss (sCM) of the new frames of `clip`.

    `model` is the gradient-carrying student (possibly DDP-wrapped), `student` the same weights
    called without a graph for the JVP, `teacher` the frozen teacher. Returns (loss, figures, v)
    with v [B, T, C, h, w] the student's velocity (with its graph, for an adversarial term).
    """
    x_t, t, actions, moving = clip.x_t, clip.t, clip.actions, clip.moving
    teacher = guided_teacher(teacher, cfg.guidance, moving)
    s = flow_to_trig(t)
    scale = _frame_axes(torch.cos(s) + torch.sin(s), x_t)
    x_s = scale * x_t
    with torch.no_grad():
        dx_ds = _only_moving(trig_velocity(x_s, s, teacher(x_t, t, actions)), moving)
    f_minus, df_ds = student_tangent(student, x_s, s, actions, dx_ds, moving)
    cos, sin = _frame_axes(torch.cos(s), x_s), _frame_axes(torch.sin(s), x_s)
    tangent = _only_moving(-cos**2 * (f_minus - dx_ds) - ramp * cos * sin * (x_s + df_ds), moving)
    norm = tangent.flatten(2).norm(dim=-1)  # [B, T]
    target = tangent / _frame_axes(norm + cfg.tangent_norm, tangent)
    v = model(x_t, t, actions)
    f_theta = trig_velocity(x_s, s, v)
    loss = _per_frame_mean((f_theta.float() - f_minus.float() - target.float()).pow(2), moving)
    tangent_norm = _only_moving(norm, moving).sum() / moving.sum().clamp_min(1)
    return loss, {"tangent_norm": tangent_norm.detach()}, v


def discrete_grid(clip: DistillClip, intervals: int, generator: torch.Generator | None = None) -> DistillClip:
    """`clip` with each moving frame put on a random point t_n = n / N, n in 1..N, of the grid."""
    n = torch.randint(1, intervals + 1, clip.t.shape, generator=generator, device=clip.t.device)
    return clip.with_t(torch.where(clip.moving.bool(), n / intervals, clip.t))


def teacher_step(
    teacher: VelocityModel, x_t: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor, actions: torch.Tensor
) -> torch.Tensor:
    """One Heun step of the teacher's ODE from t to t_next, per frame ([B, T] each)."""
    v = teacher(x_t, t, actions)
    step = _frame_axes(t_next - t, x_t)
    return x_t + step * 0.5 * (v + teacher(x_t + step * v, t_next, actions))


def segment_start(t: torch.Tensor, segments: int) -> torch.Tensor:
    """Start t_(k-1) = (k - 1) / K of the segment (t_(k-1), t_k] of [0, 1] that holds each t."""
    return (torch.ceil(t * segments - 1e-6) - 1).clamp_min(0) / segments


def euler_jump(x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor, t_to: torch.Tensor) -> torch.Tensor:
    """x_t + (t_to - t) v per frame: one Euler step of the sampler (the consistency function at t_to = 0)."""
    return x_t + _frame_axes(t_to - t, x_t) * v


def discrete_cd_loss(
    model: VelocityModel, student: VelocityModel, teacher: VelocityModel, clip: DistillClip,
    cfg: ConsistencyConfig,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """Discrete (multistep) consistency distillation of a clip whose moving frames sit on the grid
    (`discrete_grid`); returns what `scm_loss` returns.

    With K = `segments`, [0, 1] is cut into K segments and a frame at t in (t_(k-1), t_k] must land,
    in one Euler step of the sampler, where the teacher's ODE is at t_(k-1): the target is one teacher
    step to t_(n-1), then the student's own stop-gradient Euler step to t_(k-1) (none when
    t_(n-1) = t_(k-1)). K = 1 is plain consistency distillation (the landing point is f at t = 0);
    a K-step student samples with K Euler steps on the uniform grid.
    """
    intervals = cfg.discrete_intervals
    teacher = guided_teacher(teacher, cfg.guidance, clip.moving)
    t, actions, moving = clip.t, clip.actions, clip.moving.bool()
    t_next = torch.where(moving, (torch.round(t * intervals) - 1) / intervals, t)  # context frames stay put
    start = torch.where(moving, segment_start(t, cfg.segments), t)
    x_t = clip.x_t
    with torch.no_grad():
        x_next = teacher_step(teacher, x_t, t, t_next, actions)
        target = euler_jump(x_next, t_next, student(x_next, t_next, actions), start)
        target = torch.where((t_next > start)[..., None, None, None], target, x_next)
    v = model(x_t, t, actions)
    loss = _per_frame_mean((euler_jump(x_t, t, v, start).float() - target.float()).pow(2), clip.moving)
    return loss, {}, v


__all__ = [
    "METHODS",
    "ConsistencyConfig",
    "DistillClip",
    "consistency_function",
    "discrete_cd_loss",
    "discrete_grid",
    "euler_jump",
    "segment_start",
    "flow_to_trig",
    "guided_teacher",
    "jvp_attention",
    "make_clip",
    "scm_loss",
    "split_points",
    "student_tangent",
    "teacher_step",
    "trig_model",
    "trig_to_flow",
    "trig_velocity",
]
