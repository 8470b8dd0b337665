"""Block-causal attention over frames: which key frames each query frame sees, and the kernels.

Visibility rule (window W = `max_frames`, S sink frames): query frame i sees key frame f when

    0 <= f <= i  and  (i - f < W - S  or  f < S)

so every frame attends to at most W frames: the S sink frames, then the most recent W - S frames
(itself included). While i < W this is plain block-causal attention over the whole prefix.

Time positions (RoPE) are relative to the window, never absolute, so a rollout of any length keeps
them bounded: with reference r, a query frame i sits at i - r and a recent key frame f at f - r
(their distance is the true i - f); sink frame s sits at s + max(0, i - W + 1) - r, i.e. the sinks
are always placed right before the recent frames of that query's window. Because that position
depends on the query frame, sink keys are attended through per-query-frame *copies* ("sink copies")
whenever the sinks are not plain prefix frames. Key frames are ordered [sink copies | main keys].
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

ATTENTION_BACKENDS = ("sdpa", "flex", "xformers")


@dataclass(frozen=True)
class FramePlan:
    """Frame-level attention layout of one forward call (host side, tiny)."""

    query_positions: np.ndarray  # [Nq_frames] RoPE time position of each query frame
    key_positions: np.ndarray  # [Nk_frames] RoPE time position of each key frame (copies, then main)
    visible: np.ndarray  # [Nq_frames, Nk_frames] bool
    num_sink_copies: int  # query frames that get a copy of the S sink frames (each copy = S key frames)

    @property
    def needs_mask(self) -> bool:
        return not bool(self.visible.all())


def plan_frames(
    query_frames: list[int],
    main_key_frames: list[int],
    copy_queries: list[int],
    sinks_filled: list[bool],
    window: int,
    sinks: int,
) -> FramePlan:
    """Visibility and positions for `query_frames` against [sink copies for `copy_queries` | main keys].

    `main_key_frames` uses -1 for an empty cache slot. `sinks_filled[s]` says whether sink frame s
    exists where the copies are read from (a cache that has not reached frame s yet has not).
    """
    queries = np.asarray(query_frames, dtype=np.int64)[:, None]  # [Nq, 1]
    reference = max(0, int(queries.max()) - window + 1)
    keys = np.asarray(main_key_frames, dtype=np.int64)[None, :]  # [1, Nk]
    recent = queries - keys < window - sinks
    prefix_sink = (keys < sinks) & (queries < window)  # past the window, sinks come through copies
    main_visible = (keys >= 0) & (keys <= queries) & (recent | prefix_sink)

    copy_positions, copy_visible = [], []
    for copy_query in copy_queries:
        offset = max(0, copy_query - window + 1)
        copy_positions.extend(s + offset - reference for s in range(sinks))
        for s in range(sinks):
            copy_visible.append((queries[:, 0] == copy_query) & sinks_filled[s])
    copies = np.stack(copy_visible, axis=1) if copy_visible else np.zeros((queries.shape[0], 0), dtype=bool)
    return FramePlan(
        query_positions=(queries[:, 0] - reference).astype(np.float64),
        key_positions=np.concatenate([np.asarray(copy_positions, dtype=np.float64), keys[0] - reference]),
        visible=np.concatenate([copies, main_visible], axis=1),
        num_sink_copies=len(copy_queries),
    )


def plan_teacher_forced(frames: int, window: int) -> FramePlan:
    """Frames [context 0..T-1 | noisy 0..T-1] of one clip, for training with inference's view of the past.

    Context frames attend block-causally among themselves (as committed frames do); noisy frame i
    attends to context frames i-W+1 .. i-1 and to itself, never to another noisy frame, so each is
    denoised exactly as the next frame after a committed context is. Both copies of frame i sit at
    time position i.
    """
    index = np.arange(frames)
    queries, keys = index[:, None], index[None, :]
    causal = (keys <= queries) & (queries - keys < window)
    visible = np.block([
        [causal, np.zeros((frames, frames), dtype=bool)],
        [causal & (keys < queries), np.eye(frames, dtype=bool)],
    ])
    positions = np.concatenate([index, index]).astype(np.float64) - max(0, frames - window)
    return FramePlan(query_positions=positions, key_positions=positions, visible=visible, num_sink_copies=0)


def token_mask(visible: np.ndarray, tokens_per_frame: int, device: torch.device) -> torch.Tensor:
    """Frame-level [Nq_f, Nk_f] visibility -> token-level bool [Nq_f * L, Nk_f * L]."""
    frames = torch.as_tensor(visible, device=device)
    return frames.repeat_interleave(tokens_per_frame, 0).repeat_interleave(tokens_per_frame, 1)


def check_backend(name: str) -> None:
    """Raise a clear error when backend `name` is unknown or cannot run here."""
    if name not in ATTENTION_BACKENDS:
        raise ValueError(f"unknown attention backend {name!r}; choose one of {ATTENTION_BACKENDS}")
    if name == "xformers":
        try:
            import xformers.ops  # noqa: F401
        except ImportError as err:
            raise ImportError("attention backend 'xformers' needs `pip install gameworld[xformers]`") from err


@dataclass
class AttentionMask:
    """The same mask in the form each backend wants; built once per plan (and cached with it)."""

    visible: torch.Tensor | None  # bool [Nq, Nk]; None = everything visible
    additive: torch.Tensor | None = None  # 0 / -inf in the query dtype, for SDPA and xformers
    block_mask: object | None = None  # flex BlockMask

    def for_sdpa(self, dtype: torch.dtype) -> torch.Tensor | None:
        if self.visible is None:
            return None
        if self.additive is None or self.additive.dtype != dtype:
            additive = torch.zeros(self.visible.shape, dtype=dtype, device=self.visible.device)
            self.additive = additive.masked_fill_(~self.visible, float("-inf"))
        return self.additive

    def for_flex(self):
        if self.visible is None:
            return None
        if self.block_mask is None:
            from torch.nn.attention.flex_attention import create_block_mask

            visible = self.visible

            def mask_mod(batch, head, q_index, kv_index):
                return visible[q_index, kv_index]

            nq, nk = visible.shape
            self.block_mask = create_block_mask(mask_mod, None, None, nq, nk, device=visible.device)
        return self.block_mask


@functools.cache
def _compiled_flex_attention():
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: AttentionMask, backend: str
) -> torch.Tensor:
    """q [B, H, Nq, Dh], k/v [B, H, Nk, Dh] -> [B, H, Nq, Dh] under `mask`, with `backend`."""
    if backend == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask.for_sdpa(q.dtype))
    if backend == "flex":
        from torch.nn.attention.flex_attention import flex_attention

        if q.is_cuda:
            return _compiled_flex_attention()(q, k, v, block_mask=mask.for_flex())
        with warnings.catch_warnings():  # eager flex on CPU is for checking numbers, not speed
            warnings.filterwarnings("ignore", message=".*flex_attention called without torch.compile.*")
            return flex_attention(q, k, v, block_mask=mask.for_flex())
    if backend == "xformers":
        import xformers.ops as xops

        bias = mask.for_sdpa(q.dtype)
        if bias is not None:  # xformers wants the bias row stride aligned to 8 elements
            nq, nk = bias.shape
            padded = bias.new_zeros(nq, nk + (-nk) % 8)
            padded[:, :nk] = bias
            bias = padded[:, :nk].expand(q.shape[0], q.shape[1], nq, nk)
        out = xops.memory_efficient_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_bias=bias
        )  # [B, Nq, H, Dh]
        return out.transpose(1, 2)
    raise ValueError(f"unknown attention backend {backend!r}; choose one of {ATTENTION_BACKENDS}")
