"""NextFrameDiT: the next-frame diffusion transformer, whole, in one file.

A clip of latent frames [B, T, C, h, w] is cut into patches (L = h*w / p^2 tokens per frame). Each
frame carries its own noise level and action; their embeddings are summed into one conditioning
vector per frame, which drives adaLN-zero modulation of that frame's tokens in every block (DiT).
Attention is block-causal over frames (see `attention.py`) with 3D RoPE (`rope.py`); the model
predicts the flow-matching velocity `eps - x0` of every frame.

With `previous_frame_input`, each frame's patches also see the previous frame's input latent (the
clip shifted by one frame; zeros before the first): most of a next frame is the last one moved a
little, and this path hands the model that last frame at full resolution instead of only through
attention. Its embedding starts at zero, so weights trained without it load and behave unchanged.

Training calls `forward` on whole clips. Inference calls `forward_step` on N new frames against a
`KVCache` of committed frames; with `write=True` their keys/values are committed. For any rollout,
stepping one frame at a time (committing each) gives the same numbers as `forward` on the clip.

Sizes (params within 5% of the name): see `MODEL_SIZES`; `NextFrameDiT.from_size("tiny")`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from gameworld.actions import ActionSpace
from gameworld.atomic import staged_directory
from gameworld.models.attention import (
    AttentionMask,
    FramePlan,
    attend,
    check_backend,
    plan_frames,
    plan_teacher_forced,
    token_mask,
)
from gameworld.models.kv_cache import KVCache
from gameworld.models.rope import apply_rope, rope_rotations, split_head_dim

MODEL_SIZES: dict[str, dict] = {
    "tiny": dict(hidden_size=256, depth=6, num_heads=4),  # ~7M: the CPU default
    "130m": dict(hidden_size=768, depth=12, num_heads=12),
    "310m": dict(hidden_size=1024, depth=16, num_heads=16),
    "774m": dict(hidden_size=1280, depth=26, num_heads=20),
}
# What `from_size` assumes unless told otherwise: the default tokenizer on 256x144 frames
# (8 channels at 1/8 resolution), the minecraft action space, 2x2 patches.
DEFAULT_LATENT = dict(
    in_channels=8, latent_height=18, latent_width=32, action_dim=ActionSpace.minecraft().dim, patch_size=2
)


class TimestepEmbedder(nn.Module):
    """Noise level t in [0, 1] -> sinusoidal features of 1000 t -> MLP (as in DiT)."""

    def __init__(self, hidden_size: int, frequency_size: int = 256) -> None:
        super().__init__()
        self.frequency_size = frequency_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_size, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size)
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.frequency_size // 2
        freqs = torch.exp(
            -math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half
        )
        args = 1000.0 * t.float()[..., None] * freqs  # [..., half]
        features = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        return self.mlp(features.to(self.mlp[0].weight.dtype))


class RMSNorm(nn.Module):
    """RMS norm over the last dim with a learned scale, computed in fp32."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed * self.weight.float()).to(x.dtype)


def layer_norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Affine-free LayerNorm in fp32 (adaLN supplies scale and shift)."""
    return F.layer_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x [B, F, L, D] modulated per frame by shift/scale [B, F, D]."""
    return x * (1 + scale[:, :, None]) + shift[:, :, None]


@dataclass
class AttentionInputs:
    """Everything the blocks of one forward call share: rotations, mask, and where keys come from."""

    query_rope: torch.Tensor  # complex rotations [Nq, Dh/2]
    key_rope: torch.Tensor  # complex rotations [Nk, Dh/2]
    mask: AttentionMask
    num_sink_copies: int
    sink_tokens: int  # S * L
    cache: KVCache | None = None
    write_index: torch.Tensor | None = None  # cache token slots of the new frames when committing


class Attention(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.q_norm = RMSNorm(self.head_dim)
        self.k_norm = RMSNorm(self.head_dim)
        self.proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor, inputs: AttentionInputs, layer: int, backend: str) -> torch.Tensor:
        batch, tokens, _ = x.shape
        qkv = self.qkv(x).view(batch, tokens, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, N, Dh]
        q, k = self.q_norm(q), self.k_norm(k)
        keys, values = self._gather_keys(k, v, inputs, layer)  # un-rotated [B, H, Nk, Dh]
        q = apply_rope(q, inputs.query_rope)
        keys = apply_rope(keys, inputs.key_rope)
        out = attend(q, keys, values, inputs.mask, backend)  # [B, H, N, Dh]
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, -1))

    @staticmethod
    def _gather_keys(
        k: torch.Tensor, v: torch.Tensor, inputs: AttentionInputs, layer: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """[sink copies | cached ring | new tokens], in the order of the plan's key frames."""
        cache, sink = inputs.cache, inputs.sink_tokens
        keys, values = [k], [v]
        if cache is not None:
            keys.insert(0, cache.keys[layer][:, :, sink:])
            values.insert(0, cache.values[layer][:, :, sink:])
        if inputs.num_sink_copies:
            source_k = cache.keys[layer] if cache is not None else k
            source_v = cache.values[layer] if cache is not None else v
            keys.insert(0, source_k[:, :, :sink].repeat(1, 1, inputs.num_sink_copies, 1))
            values.insert(0, source_v[:, :, :sink].repeat(1, 1, inputs.num_sink_copies, 1))
        if len(keys) > 1:
            keys, values = torch.cat(keys, dim=2), torch.cat(values, dim=2)  # copies the slots read
        else:
            keys, values = k, v
        if cache is not None and inputs.write_index is not None:  # after reading: slots may be reused
            written = inputs.write_index.numel()
            cache.store(layer, inputs.write_index, k[:, :, :written], v[:, :, :written])
        return keys, values


class DiTBlock(nn.Module):
    """Pre-norm transformer block with adaLN-zero modulation per frame."""

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.attn = Attention(hidden_size, num_heads)
        mlp_hidden = int(hidden_size * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(hidden_size, mlp_hidden),
            nn.GELU(approximate="tanh"),
            nn.Linear(mlp_hidden, hidden_size),
        )
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size))

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor, inputs: AttentionInputs, layer: int, backend: str
    ) -> torch.Tensor:
        batch, frames, tokens, dim = x.shape  # x [B, F, L, D], cond [B, F, D]
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(cond).chunk(6, dim=-1)
        h = modulate(layer_norm(x), shift1, scale1).reshape(batch, frames * tokens, dim)
        x = x + gate1[:, :, None] * self.attn(h, inputs, layer, backend).view(batch, frames, tokens, dim)
        return x + gate2[:, :, None] * self.mlp(modulate(layer_norm(x), shift2, scale2))


class NextFrameDiT(ModelMixin, ConfigMixin):
    """Block-causal DiT over latent frames: (latents, noise level, action) per frame -> velocity."""

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        in_channels: int,
        latent_height: int,
        latent_width: int,
        action_dim: int,
        patch_size: int,
        hidden_size: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        max_frames: int = 16,
        sink_frames: int = 0,
        attention_backend: str = "sdpa",
        rope_theta: float = 10000.0,
        previous_frame_input: bool = False,
    ) -> None:
        super().__init__()
        if latent_height % patch_size or latent_width % patch_size:
            raise ValueError(
                f"latent {latent_height}x{latent_width} is not divisible by patch size {patch_size}"
            )
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
        split_head_dim(hidden_size // num_heads)
        if not 0 <= sink_frames <= max_frames - 2:
            raise ValueError(f"need 0 <= sink_frames <= max_frames - 2, got {sink_frames} and {max_frames}")
        check_backend(attention_backend)
        self.attention_backend = attention_backend
        self.grid_height, self.grid_width = latent_height // patch_size, latent_width // patch_size
        self.tokens_per_frame = self.grid_height * self.grid_width
        self.head_dim = hidden_size // num_heads
        self.gradient_checkpointing = False
        self._plans: dict[tuple, AttentionInputs] = {}  # full-forward attention inputs per (frames, device)

        self.patch_embed = nn.Linear(in_channels * patch_size**2, hidden_size)
        self.previous_embed = (
            nn.Linear(in_channels * patch_size**2, hidden_size) if previous_frame_input else None
        )
        self.noise_embed = TimestepEmbedder(hidden_size)
        self.action_embed = nn.Sequential(
            nn.Linear(action_dim, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size)
        )
        self.blocks = nn.ModuleList(DiTBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth))
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size))
        self.final_linear = nn.Linear(hidden_size, in_channels * patch_size**2)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        for mlp in (self.noise_embed.mlp, self.action_embed):
            nn.init.normal_(mlp[0].weight, std=0.02)
            nn.init.normal_(mlp[2].weight, std=0.02)
        for block in self.blocks:  # adaLN-zero: every block starts as the identity
            nn.init.zeros_(block.modulation[-1].weight)
            nn.init.zeros_(block.modulation[-1].bias)
        zero_init = [self.final_modulation[-1], self.final_linear]
        if self.previous_embed is not None:  # starts unused: the model behaves as without it
            zero_init.append(self.previous_embed)
        for layer in zero_init:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    @classmethod
    def from_size(cls, size: str, **overrides) -> NextFrameDiT:
        """A fresh model of a named size; `overrides` set any config field (latent shape, window...)."""
        if size not in MODEL_SIZES:
            raise ValueError(f"unknown model size {size!r}; choose one of {sorted(MODEL_SIZES)}")
        return cls(**{**DEFAULT_LATENT, **MODEL_SIZES[size], **overrides})

    def set_attention_backend(self, name: str) -> None:
        """Switch the attention kernel: "sdpa" (default), "flex" (FlexAttention) or "xformers"."""
        check_backend(name)
        self.attention_backend = name

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> None:
        """diffusers `save_pretrained` (safetensors), written to a temporary directory then renamed."""
        kwargs.setdefault("safe_serialization", True)
        with staged_directory(save_directory) as staging:
            super().save_pretrained(staging, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs) -> NextFrameDiT:
        """Load a directory written by `save_pretrained`; safetensors only, never pickle."""
        path = os.fspath(pretrained_model_name_or_path)
        if not os.path.isfile(os.path.join(path, cls.config_name)):
            raise FileNotFoundError(f"{path}: no {cls.config_name} (not a NextFrameDiT directory)")
        kwargs.setdefault("use_safetensors", True)
        kwargs.setdefault("low_cpu_mem_usage", False)  # no `accelerate` needed
        return super().from_pretrained(path, **kwargs)

    # ----------------------------------------------------------------------------------- shapes

    def patchify(self, latents: torch.Tensor) -> torch.Tensor:
        """[B, T, C, h, w] -> [B, T, L, C * p * p]."""
        batch, frames, channels, _, _ = latents.shape
        p, gh, gw = self.config.patch_size, self.grid_height, self.grid_width
        x = latents.reshape(batch, frames, channels, gh, p, gw, p)
        return x.permute(0, 1, 3, 5, 2, 4, 6).reshape(batch, frames, gh * gw, channels * p * p)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, L, C * p * p] -> [B, T, C, h, w]."""
        batch, frames = x.shape[:2]
        p, gh, gw, channels = (
            self.config.patch_size,
            self.grid_height,
            self.grid_width,
            self.config.in_channels,
        )
        x = x.reshape(batch, frames, gh, gw, channels, p, p).permute(0, 1, 4, 2, 5, 3, 6)
        return x.reshape(batch, frames, channels, gh * p, gw * p)

    @property
    def _latent_shape(self) -> tuple[int, int, int]:
        cfg = self.config
        return cfg.in_channels, cfg.latent_height, cfg.latent_width

    def _check_inputs(self, latents: torch.Tensor, noise_levels: torch.Tensor, actions: torch.Tensor) -> None:
        cfg = self.config
        expected = self._latent_shape
        if latents.ndim != 5 or tuple(latents.shape[2:]) != expected:
            raise ValueError(
                f"latents must be [B, T, {', '.join(map(str, expected))}], got {tuple(latents.shape)}"
            )
        batch, frames = latents.shape[:2]
        if tuple(noise_levels.shape) != (batch, frames):
            raise ValueError(
                f"noise_levels must be [B, T] = {[batch, frames]}, got {tuple(noise_levels.shape)}"
            )
        if tuple(actions.shape) != (batch, frames, cfg.action_dim):
            raise ValueError(
                f"actions must be [B, T, A] = {[batch, frames, cfg.action_dim]}, got {tuple(actions.shape)}"
            )

    # ----------------------------------------------------------------------------------- trunk

    def _run(
        self,
        latents: torch.Tensor,
        noise_levels: torch.Tensor,
        actions: torch.Tensor,
        inputs: AttentionInputs,
        previous: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`previous` [B, F, C, h, w]: each frame's previous frame (with `previous_frame_input`)."""
        dtype = self.patch_embed.weight.dtype
        x = self.patch_embed(self.patchify(latents.to(dtype)))  # [B, F, L, D]
        if self.previous_embed is not None:
            x = x + self.previous_embed(self.patchify(previous.to(dtype)))
        cond = self.noise_embed(noise_levels) + self.action_embed(actions.to(dtype))  # [B, F, D]
        backend = self.attention_backend
        for layer, block in enumerate(self.blocks):
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                x = self._gradient_checkpointing_func(block, x, cond, inputs, layer, backend)
            else:
                x = block(x, cond, inputs, layer, backend)
        shift, scale = self.final_modulation(cond).chunk(2, dim=-1)
        x = self.final_linear(modulate(layer_norm(x), shift, scale))  # [B, F, L, C * p * p]
        return self.unpatchify(x)  # [B, F, C, h, w]

    def _rotations(self, frame_positions, device: torch.device) -> torch.Tensor:
        positions = torch.as_tensor(frame_positions, dtype=torch.float32, device=device)
        cfg = self.config
        return rope_rotations(positions, self.grid_height, self.grid_width, self.head_dim, cfg.rope_theta)

    def _attention_inputs(
        self, plan: FramePlan, device: torch.device, cache: KVCache | None = None, write_index=None
    ) -> AttentionInputs:
        visible = token_mask(plan.visible, self.tokens_per_frame, device) if plan.needs_mask else None
        return AttentionInputs(
            query_rope=self._rotations(plan.query_positions, device),
            key_rope=self._rotations(plan.key_positions, device),
            mask=AttentionMask(visible),
            num_sink_copies=plan.num_sink_copies,
            sink_tokens=self.config.sink_frames * self.tokens_per_frame,
            cache=cache,
            write_index=write_index,
        )

    def forward(
        self,
        latents: torch.Tensor,
        noise_levels: torch.Tensor,
        actions: torch.Tensor,
        context: torch.Tensor | None = None,
        context_levels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Velocity [B, T, C, h, w] of latents [B, T, C, h, w] at noise levels [B, T], actions [B, T, A].

        Block-causal: frame i depends on frames <= i only (within the sliding window of `max_frames`).

        Teacher forcing (training): with `context` [B, T, C, h, w] at `context_levels` [B, T], frame i
        of `latents` depends on context frames < i and on itself only, as the next frame after a
        committed context does at inference; every frame of the clip is trained that way in one call
        (the sequence is twice as long). See `plan_teacher_forced`.
        """
        self._check_inputs(latents, noise_levels, actions)
        if context is not None or context_levels is not None:
            return self._forward_teacher_forced(latents, noise_levels, actions, context, context_levels)
        frames = latents.shape[1]
        key = (frames, latents.device)
        if key not in self._plans:
            window, sinks = self.config.max_frames, self.config.sink_frames
            copies = [i for i in range(frames) if i >= window] if sinks else []
            plan = plan_frames(
                list(range(frames)), list(range(frames)), copies, [True] * sinks, window, sinks
            )
            self._plans[key] = self._attention_inputs(plan, latents.device)
        return self._run(latents, noise_levels, actions, self._plans[key], self._previous_frames(latents))

    def _forward_teacher_forced(
        self,
        latents: torch.Tensor,
        noise_levels: torch.Tensor,
        actions: torch.Tensor,
        context: torch.Tensor | None,
        context_levels: torch.Tensor | None,
    ) -> torch.Tensor:
        if context is None or context_levels is None:
            raise ValueError("teacher forcing needs both context and context_levels")
        if context.shape != latents.shape or context_levels.shape != noise_levels.shape:
            raise ValueError(
                f"context {tuple(context.shape)} and context_levels {tuple(context_levels.shape)} must have "
                f"the shapes of latents {tuple(latents.shape)} and noise_levels {tuple(noise_levels.shape)}"
            )
        frames = latents.shape[1]
        if self.config.sink_frames and frames > self.config.max_frames:
            raise ValueError(
                f"teacher forcing with sink frames needs clips of at most "
                f"max_frames={self.config.max_frames} frames, got {frames}"
            )
        key = ("teacher_forced", frames, latents.device)
        if key not in self._plans:
            plan = plan_teacher_forced(frames, self.config.max_frames)
            self._plans[key] = self._attention_inputs(plan, latents.device)
        previous = self._previous_frames(context)  # noisy frame i follows context frame i - 1 (inference)
        velocity = self._run(
            torch.cat([context, latents], dim=1),  # [B, 2T, C, h, w]
            torch.cat([context_levels, noise_levels], dim=1),
            torch.cat([actions, actions], dim=1),
            self._plans[key],
            None if previous is None else torch.cat([previous, previous], dim=1),
        )
        return velocity[:, frames:]  # [B, T, C, h, w]: the noisy frames

    def _previous_frames(
        self, latents: torch.Tensor, before: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """Latents [B, T, C, h, w] shifted one frame later; frame 0 gets `before` [B, C, h, w] or zeros."""
        if self.previous_embed is None:
            return None
        first = torch.zeros_like(latents[:, 0]) if before is None else before.to(latents.dtype)
        return torch.cat([first[:, None], latents[:, :-1]], dim=1)

    # ----------------------------------------------------------------------------------- streaming

    def new_cache(
        self,
        batch_size: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        extra_frames: int = 0,
        window_frames: int | None = None,
    ) -> KVCache:
        """An empty cache for this model; `extra_frames` = room for speculative frames beyond the window.

        `window_frames` (default `max_frames`) shortens the window new frames attend to at inference.
        """
        cfg = self.config
        window = cfg.max_frames if window_frames is None else window_frames
        if not cfg.sink_frames + 2 <= window <= cfg.max_frames:
            raise ValueError(
                f"window_frames must be in [{cfg.sink_frames + 2}, {cfg.max_frames}] (sink frames + 2 .. "
                f"max_frames), got {window}"
            )
        return KVCache(
            num_layers=cfg.depth,
            batch_size=batch_size,
            num_heads=cfg.num_heads,
            head_dim=self.head_dim,
            tokens_per_frame=self.tokens_per_frame,
            window_frames=window,
            sink_frames=cfg.sink_frames,
            extra_frames=extra_frames,
            frame_shape=self._latent_shape if cfg.previous_frame_input else None,
            device=device if device is not None else self.device,
            dtype=dtype if dtype is not None else self.dtype,
        )

    def forward_step(
        self,
        latents: torch.Tensor,
        noise_levels: torch.Tensor,
        actions: torch.Tensor,
        cache: KVCache,
        write: bool = False,
        write_count: int | None = None,
    ) -> torch.Tensor:
        """Velocity [B, N, C, h, w] of N new frames that follow the cache's committed frames.

        New frames attend to the cached window and block-causally among themselves; `write=True`
        commits their keys/values (at the noise levels given) as the next N frames of the cache,
        or only the first `write_count` of them. That fuses committing a finished frame with the
        first denoising step of the next: frames [finished at context noise, next at t = 1],
        `write_count=1` (block-causality keeps the finished frame's keys/values the same).
        """
        self._check_inputs(latents, noise_levels, actions)
        batch, count = latents.shape[:2]
        if batch != cache.batch_size:
            raise ValueError(f"batch size {batch} does not match the cache's {cache.batch_size}")
        if (
            cache.tokens_per_frame != self.tokens_per_frame
            or cache.sink_frames != self.config.sink_frames
            or cache.window_frames > self.config.max_frames
        ):
            raise ValueError(f"{cache} was not made by this model (use model.new_cache)")
        if self.previous_embed is not None and cache.frame_latents is None:
            raise ValueError(f"{cache} keeps no frame latents; this model needs them (model.new_cache)")
        first = cache.num_frames
        window, sinks = cache.window_frames, self.config.sink_frames
        if sinks and first < sinks and first + count > window:
            raise ValueError(
                f"commit the {sinks} sink frame(s) before stepping past the window "
                f"(frames {first}..{first + count - 1} at once)"
            )
        commits = (count if write_count is None else write_count) if write else 0
        if not 0 <= commits <= count:
            raise ValueError(f"write_count must be in [0, {count}], got {write_count}")
        cache.check_room(commits)
        queries = list(range(first, first + count))
        slots = cache.slot_frames
        plan = plan_frames(
            query_frames=queries,
            main_key_frames=slots[sinks:] + queries,
            copy_queries=queries if sinks else [],
            sinks_filled=[frame >= 0 for frame in slots[:sinks]],
            window=window,
            sinks=sinks,
        )
        write_index = cache.token_index(first, commits) if commits else None
        inputs = self._attention_inputs(plan, latents.device, cache, write_index)
        previous = None
        if self.previous_embed is not None:
            before = cache.latent_of(first - 1) if first else None
            previous = self._previous_frames(latents, before)
            if commits:
                cache.store_latents(first, latents[:, :commits])
        velocity = self._run(latents, noise_levels, actions, inputs, previous)
        cache.advance(commits)
        return velocity
