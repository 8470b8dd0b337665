"""The committed frames of one rollout, and how the next frames are drawn after them.

A `FrameStream` holds what the world model conditions on: the latents of the committed frames,
noised to the context level and kept with their actions, and (with `use_cache`) their keys/values
in a `KVCache`. `sample(actions)` denoises new frames after them with
the samplers of `gameworld.diffusion`; `commit` appends frames; `rollback` forgets the newest ones
(speculative frames whose action did not come).

Committed frames reach the KV cache lazily: their keys/values are written by the first model call
of the next `sample`, which takes them as extra query frames in front of the new ones
(`forward_step(write_count=...)`; block-causality keeps their keys/values the same as a separate
commit pass would make them). One call per frame instead of two. `flush()` writes them at once.

Noise depends on the seed and the frame index only: frame f draws its sampling noise, then its
commit noise, from a generator seeded with (seed, f), on the CPU. So a rollout is a function of the
seed, the start and the actions, whatever was speculated and rolled back on the way, and the same
on every device.

Without the cache, each new frame re-encodes the window from the kept latents (one forward over the
context frames, then the denoising steps against it). That equals the cache while the rollout fits
in the window. Past it, the cache keeps the keys each frame got when it was new (what
`NextFrameDiT.forward` computes on the whole clip), whereas the recompute sees only the window (and,
for a model with `previous_frame_input`, the oldest frame of the window reads no previous frame).
`restore` starts from a window the same way.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from gameworld.diffusion import SAMPLERS, add_noise, integrate, time_schedule
from gameworld.models.dit import NextFrameDiT
from gameworld.models.kv_cache import KVCache


@dataclass(frozen=True)
class Sampling:
    """How each new frame is denoised (see `gameworld.diffusion.samplers`)."""

    steps: int = 4
    sampler: str = "euler"
    shift: float = 1.0
    context_noise: float = 0.02
    guidance: float = 1.0
    temperature: float = 1.0  # scale of the noise a new frame starts from (< 1: calmer, less varied frames)
    start_level: float = 1.0  # < 1: start from a given guess of the frame noised to this level (SDEdit)

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {self.steps!r}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose one of {SAMPLERS}")
        if self.shift <= 0:
            raise ValueError(f"shift must be > 0, got {self.shift}")
        if not 0.0 <= self.context_noise < 1.0:
            raise ValueError(f"context_noise must be in [0, 1), got {self.context_noise}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0.0 < self.start_level <= 1.0:
            raise ValueError(f"start_level must be in (0, 1], got {self.start_level}")


def frame_generator(seed: int, frame: int) -> torch.Generator:
    """The CPU generator of frame `frame` of a rollout seeded with `seed`."""
    state = np.random.SeedSequence([seed % 2**63, frame]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)


class FrameStream:
    """Committed frames (noised latents + actions, and their keys/values) of one batch-1 rollout.

    A new frame attends to `window` frames, itself included (default: the model's `max_frames`).
    `lookahead` frames can be committed beyond the newest one the next frame will keep, and rolled
    back later: room for speculative frames.
    """

    def __init__(
        self,
        model: NextFrameDiT,
        window: int | None = None,
        lookahead: int = 0,
        use_cache: bool = True,
        seed: int = 0,
    ) -> None:
        if lookahead < 0:
            raise ValueError(f"lookahead must be >= 0, got {lookahead}")
        self.model = model
        self.use_cache = use_cache
        self.seed = int(seed)
        self.lookahead = lookahead
        cfg = model.config
        self.device, self.dtype = model.device, model.dtype  # (diffusers' model.device walks the modules)
        # With the cache: the stream's keys/values. Without: scratch space re-filled for every sample.
        extra = lookahead if use_cache else 0
        self.cache: KVCache = model.new_cache(1, extra_frames=extra, window_frames=window)
        self.window, self.sinks = self.cache.window_frames, cfg.sink_frames
        self._latent_shape = (cfg.in_channels, cfg.latent_height, cfg.latent_width)
        recent = self.window - 1 - self.sinks + lookahead  # what the ring of the cache holds
        # (noised latent [C, h, w], action [A], noise level) of the first `sinks` and the newest frames
        self._sink_entries: list[tuple[torch.Tensor, torch.Tensor, float]] = []
        self._recent_entries: deque[tuple[torch.Tensor, torch.Tensor, float]] = deque(maxlen=recent)
        self._num_frames = 0
        self._unwritten: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # committed, not cached

    @property
    def num_frames(self) -> int:
        """Frames committed since the start (unbounded; only the window's are kept)."""
        return self._num_frames

    @property
    def num_unwritten(self) -> int:
        """Committed frames whose keys/values the cache does not hold yet (see `flush`)."""
        return sum(latents.shape[1] for latents, _, _ in self._unwritten)

    def reset(self) -> None:
        self.cache.reset()
        self._sink_entries.clear()
        self._recent_entries.clear()
        self._unwritten.clear()
        self._num_frames = 0

    # ------------------------------------------------------------------------------------ noise

    def noise(self, first: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(sampling noise, commit noise), each [1, count, C, h, w], of frames first .. first + count - 1."""
        sample, commit = [], []
        for frame in range(first, first + count):
            generator = frame_generator(self.seed, frame)
            sample.append(torch.randn(self._latent_shape, generator=generator))
            commit.append(torch.randn(self._latent_shape, generator=generator))
        as_batch = lambda frames: torch.stack(frames)[None].to(self.device, self.dtype)  # noqa: E731
        return as_batch(sample), as_batch(commit)

    # ------------------------------------------------------------------------------------ frames

    def context(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Noised latents [1, n, C, h, w], actions [1, n, A] and noise levels [1, n] of the frames the
        next frame attends to (the sink frames, then the newest)."""
        keep = self.window - 1 - self.sinks
        recent = list(self._recent_entries)[max(0, len(self._recent_entries) - keep) :]
        entries = self._sink_entries + recent
        if not entries:
            raise RuntimeError("the stream has no committed frame yet: commit a start frame first")
        latents, actions, levels = zip(*entries, strict=True)
        return (
            torch.stack(latents)[None],
            torch.stack(actions)[None],
            torch.tensor(levels, device=self.device)[None],
        )

    @torch.no_grad()
    def commit(self, latents: torch.Tensor, actions: torch.Tensor, sampling: Sampling) -> None:
        """Append clean latents [1, N, C, h, w] with their actions [1, N, A], noised to the context level."""
        count = latents.shape[1]
        _, commit_noise = self.noise(self._num_frames, count)
        levels = torch.full((1, count), sampling.context_noise, device=self.device)
        noised = add_noise(latents.to(commit_noise), commit_noise, levels)
        actions = actions.to(commit_noise)
        if self.use_cache:
            self._unwritten.append((noised, actions, levels))
        for frame in range(count):
            entry = (noised[0, frame], actions[0, frame], sampling.context_noise)
            if self._num_frames < self.sinks:
                self._sink_entries.append(entry)
            else:
                self._recent_entries.append(entry)
            self._num_frames += 1

    @torch.no_grad()
    def restore(
        self, latents: torch.Tensor, actions: torch.Tensor, levels: torch.Tensor, num_frames: int
    ) -> None:
        """Start from another stream's `context()`, as frames num_frames - n .. num_frames - 1."""
        self.reset()
        if self.use_cache:
            self._write(self.cache, latents, actions, levels)
        entries = list(zip(latents[0], actions[0], levels[0].tolist(), strict=True))
        sinks = min(self.sinks, num_frames)
        self._sink_entries.extend(entries[:sinks])
        self._recent_entries.extend(entries[sinks:])
        self._num_frames = num_frames

    @torch.no_grad()
    def flush(self) -> None:
        """Write the keys/values of every committed frame the cache does not hold yet."""
        if self._unwritten:
            self._write(self.cache, *self._take_unwritten())

    def _take_unwritten(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        latents, actions, levels = (torch.cat(parts, dim=1) for parts in zip(*self._unwritten, strict=True))
        self._unwritten.clear()
        return latents, actions, levels

    def _write(
        self, cache: KVCache, noised: torch.Tensor, actions: torch.Tensor, levels: torch.Tensor
    ) -> None:
        """Commit noised latents to `cache`, in chunks the ring can take at once."""
        step = max(1, cache.ring_frames)
        for start in range(0, noised.shape[1], step):
            part = slice(start, start + step)
            self.model.forward_step(noised[:, part], levels[:, part], actions[:, part], cache, write=True)

    @torch.no_grad()
    def sample(
        self,
        actions: torch.Tensor,
        sampling: Sampling,
        start: torch.Tensor | None = None,
        noise_of: int | None = None,
    ) -> torch.Tensor:
        """Denoise new frames for actions [1, N, A] after the committed ones -> latents [1, N, C, h, w].

        The N frames are denoised jointly (block-causal among themselves, all at the same noise
        level) and not committed. Guidance as in `gameworld.diffusion.sample_frames`. With
        `sampling.start_level` < 1, sampling starts from `start` (latents [1, N, C, h, w], a guess of
        the new frames) noised to that level, and its steps span that level down to 0. Each frame
        starts from its own noise, or all from the sampling noise of frame `noise_of`.
        """
        count = actions.shape[1]
        if noise_of is None:
            noise, _ = self.noise(self._num_frames, count)
        else:
            noise = self.noise(noise_of, 1)[0].expand(1, count, -1, -1, -1)
        x = noise * sampling.temperature  # [1, N, C, h, w]
        level = sampling.start_level
        if (start is None) != (level == 1.0):
            raise ValueError(f"sample: a start guess goes with start_level < 1 (got {level}) and only then")
        if start is not None:
            if start.shape != x.shape:
                raise ValueError(f"sample: start must be {tuple(x.shape)}, got {tuple(start.shape)}")
            x = add_noise(start.to(x), x, torch.full((1, count), level, device=self.device))
        cache = self.cache if self.use_cache else self._refill_scratch()
        pending = self._fusable_unwritten(count)
        no_action = torch.zeros_like(actions)

        def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
            nonlocal pending
            levels = torch.full((1, count), t, device=self.device)
            if pending is None:
                v = self.model.forward_step(x, levels, actions, cache)
            else:  # commit the pending frames in the same call: [pending | new] queries
                latents, pending_actions, pending_levels = pending
                written = latents.shape[1]
                v = self.model.forward_step(
                    torch.cat([latents, x], dim=1),
                    torch.cat([pending_levels, levels], dim=1),
                    torch.cat([pending_actions, actions], dim=1),
                    cache,
                    write=True,
                    write_count=written,
                )[:, written:]
                pending = None
            if sampling.guidance != 1.0:
                v_free = self.model.forward_step(x, levels, no_action, cache)
                v = v_free + sampling.guidance * (v - v_free)
            return v

        schedule = level * time_schedule(sampling.steps, sampling.shift)
        return integrate(velocity, x, schedule, sampling.sampler)

    def _fusable_unwritten(self, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """The unwritten frames, to be written by the next call on `count` new frames (or flushed now
        when that call could not write them all)."""
        if not self._unwritten:
            return None
        written, cache = self.num_unwritten, self.cache
        crosses_sinks = cache.num_frames < self.sinks and cache.num_frames + written + count > self.window
        if written > cache.ring_frames or crosses_sinks:
            self.flush()
            return None
        return self._take_unwritten()

    def _refill_scratch(self) -> KVCache:
        self.cache.reset()
        self._write(self.cache, *self.context())
        return self.cache

    def rollback(self, num_frames: int) -> None:
        """Forget every frame from `num_frames` on: at most `lookahead` frames back."""
        drop = self._num_frames - num_frames
        if not 0 <= drop <= min(self.lookahead, len(self._sink_entries) + len(self._recent_entries)):
            raise ValueError(
                f"cannot roll back to frame {num_frames}: {self._num_frames} committed, "
                f"lookahead {self.lookahead}"
            )
        unwritten = min(drop, self.num_unwritten)
        if unwritten:
            keep = self.num_unwritten - unwritten
            latents, actions, levels = self._take_unwritten()
            if keep:
                self._unwritten.append((latents[:, :keep], actions[:, :keep], levels[:, :keep]))
        if self.use_cache and drop > unwritten:
            self.cache.rollback(self.cache.num_frames - (drop - unwritten))
        for _ in range(drop):
            (self._recent_entries or self._sink_entries).pop()
        self._num_frames = num_frames
