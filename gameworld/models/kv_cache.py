"""Preallocated key/value cache of committed frames for streaming next-frame generation.

Layout: `capacity = window - 1 + extra_frames` frame slots per layer. Slots `0..S-1` hold the sink
frames (the first S frames, kept forever); the other `R = capacity - S` slots are a ring: frame
f >= S lives in slot `S + (f - S) % R`. The window of the next frame needs its W - S - 1 previous
recent frames, so the ring keeps `extra_frames` more than that: room for speculative frames, which
can be rolled back as long as the frames the window needs were not overwritten.

Keys are stored *un-rotated* (after the q/k norm, before RoPE); the model rotates them when it
reads them, with positions relative to the current window (see `attention.py`). Hence positions
never grow with the rollout, and memory stays flat: nothing is ever allocated after construction.

With a `frame_shape`, each slot also keeps its frame's input latent, for models that see the
previous frame's latent next to the new one (`NextFrameDiT(previous_frame_input=True)`).
"""

from __future__ import annotations

import torch


class KVCache:
    """Keys/values [layers, B, heads, capacity * tokens_per_frame, head_dim] plus frame bookkeeping."""

    def __init__(
        self,
        num_layers: int,
        batch_size: int,
        num_heads: int,
        head_dim: int,
        tokens_per_frame: int,
        window_frames: int,
        sink_frames: int = 0,
        extra_frames: int = 0,
        frame_shape: tuple[int, ...] | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if extra_frames < 0:
            raise ValueError(f"extra_frames must be >= 0, got {extra_frames}")
        if not 0 <= sink_frames <= window_frames - 2:
            raise ValueError(
                f"need 0 <= sink_frames <= window - 2, got sinks={sink_frames}, window={window_frames}"
            )
        self.window_frames = window_frames
        self.sink_frames = sink_frames
        self.extra_frames = extra_frames
        self.tokens_per_frame = tokens_per_frame
        self.capacity = window_frames - 1 + extra_frames
        self.ring_frames = self.capacity - sink_frames
        shape = (num_layers, batch_size, num_heads, self.capacity * tokens_per_frame, head_dim)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.frame_latents = (  # [capacity, B, *frame_shape]
            None
            if frame_shape is None
            else torch.zeros((self.capacity, batch_size, *frame_shape), device=device, dtype=dtype)
        )
        self.reset()

    @property
    def batch_size(self) -> int:
        return self.keys.shape[1]

    @property
    def num_frames(self) -> int:
        """Frames committed so far (unbounded; the cache keeps only the ones windows still need)."""
        return self._num_frames

    @property
    def slot_frames(self) -> list[int]:
        """The frame held by each slot, -1 for an empty slot (a copy)."""
        return list(self._slot_frames)

    def reset(self) -> None:
        """Forget every frame (the memory is kept and reused)."""
        self._num_frames = 0
        self._slot_frames = [-1] * self.capacity

    def slot_of(self, frame: int) -> int:
        if frame < self.sink_frames:
            return frame
        return self.sink_frames + (frame - self.sink_frames) % self.ring_frames

    def token_index(self, first_frame: int, count: int) -> torch.Tensor:
        """Token indices (dim 3 of keys/values) of frames first_frame .. first_frame + count - 1."""
        slots = torch.tensor([self.slot_of(f) for f in range(first_frame, first_frame + count)])
        tokens = torch.arange(self.tokens_per_frame)
        index = slots[:, None] * self.tokens_per_frame + tokens[None, :]  # [count, L]
        return index.reshape(-1).to(self.keys.device)

    def check_room(self, count: int) -> None:
        """Raise unless `count` new frames can be written in one go without overwriting each other."""
        first = self._num_frames
        new_ring = sum(1 for f in range(first, first + count) if f >= self.sink_frames)
        if new_ring > self.ring_frames:
            raise ValueError(
                f"cannot commit {count} frames at once: the ring holds {self.ring_frames} "
                f"(window {self.window_frames}, sinks {self.sink_frames}, extra {self.extra_frames})"
            )

    def store(self, layer: int, index: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Write un-rotated keys/values [B, H, N * L, Dh] of new frames into `layer` at token `index`."""
        self.keys[layer].index_copy_(2, index, keys.to(self.keys.dtype))
        self.values[layer].index_copy_(2, index, values.to(self.values.dtype))

    def store_latents(self, first_frame: int, latents: torch.Tensor) -> None:
        """Keep the input latents [B, N, *frame_shape] of frames first_frame .. first_frame + N - 1."""
        for offset in range(latents.shape[1]):
            self.frame_latents[self.slot_of(first_frame + offset)] = latents[:, offset]

    def latent_of(self, frame: int) -> torch.Tensor:
        """The input latent [B, *frame_shape] of a committed frame the cache still holds."""
        slot = self.slot_of(frame)
        if self.frame_latents is None or self._slot_frames[slot] != frame:
            raise ValueError(f"{self} does not hold the latent of frame {frame}")
        return self.frame_latents[slot]

    def advance(self, count: int) -> None:
        """Mark the next `count` frames committed (after every layer has stored them)."""
        for frame in range(self._num_frames, self._num_frames + count):
            self._slot_frames[self.slot_of(frame)] = frame
        self._num_frames += count

    def oldest_rollback(self) -> int:
        """The smallest frame count `rollback` can return to from here."""
        window_recent = self.window_frames - self.sink_frames  # recent frames in a window, new one included
        held = [f for f in self._slot_frames if f >= self.sink_frames]
        if not held:
            return 0
        oldest = min(held)
        if oldest == self.sink_frames:  # nothing was ever overwritten
            return 0
        # the window of frame k needs recent frames k - window_recent + 1 .. k - 1 (those >= S)
        return oldest + window_recent - 1

    def rollback(self, num_frames: int) -> None:
        """Drop every frame from `num_frames` on, as if they had never been committed."""
        if not 0 <= num_frames <= self._num_frames:
            raise ValueError(f"cannot roll back to frame {num_frames}: {self._num_frames} frames committed")
        oldest = self.oldest_rollback()
        if num_frames < oldest:
            raise ValueError(
                f"cannot roll back to frame {num_frames}: its window was overwritten; the cache can go back "
                f"to frame {oldest} at the earliest (make it with a larger extra_frames)"
            )
        self._slot_frames = [f if f < num_frames else -1 for f in self._slot_frames]
        self._num_frames = num_frames

    def memory_bytes(self) -> int:
        tensors = [self.keys, self.values] + ([] if self.frame_latents is None else [self.frame_latents])
        return sum(t.numel() * t.element_size() for t in tensors)

    def __repr__(self) -> str:
        return (
            f"KVCache(frames={self._num_frames}, window={self.window_frames}, sinks={self.sink_frames}, "
            f"extra={self.extra_frames}, keys={tuple(self.keys.shape)}, dtype={self.keys.dtype})"
        )
