"""WorldEngine: the one generation loop that every front end (pygame, Gradio, scripts, evaluation) drives.

    eng = WorldEngine.from_pretrained("default")      # or a model directory
    frame = eng.reset(seed=0, biome="plains")         # start from the voxel game, given frames, or a video
    frame = eng.step(Action.of("forward"))            # np.uint8 [H, W, 3]
    frames = eng.rollout(actions)                     # np.uint8 [T, H, W, 3]
    eng.stats                                         # frames, speculative acceptance, time saved, latency

Each step denoises one new latent frame against the KV cache of the committed frames with a
few-step sampler, commits it at the context noise level (its keys/values are written by the next
frame's first model call), and decodes it; see `streaming.py`. Settings are one `EngineSettings`;
`stats` (an `EngineStats`) is what a HUD shows.

Speculative sampling (`speculative=N`): when the action of a step repeats the previous one, the
engine denoises that frame and the N frames after it under the same action in one batched pass
(block-causal among themselves), commits them all, and hands them out one per `step` while the
action keeps coming; on the first different action it drops the rest and rolls the cache back. With
`joint=False` the speculative frames are denoised one after another instead: the frames are then
exactly those of the non-speculative engine (the noise of a frame depends on its index only).

Motion prior (`motion_prior=LEVEL`, with the model directory's `motion_prior.json`): a frame whose
action moves the view by half a pixel or more starts from the newest frame moved by the prior's
zoom, pan and roll for that action (`apply_motion`), encoded and noised to LEVEL, instead of from pure
noise; its steps then span LEVEL down to 0. Speculative frames start from it moved twice, three
times, ... (`joint=False`: each from the one before it, decoded, as the plain engine does). The
engine follows the view's pitch from the start (taken as level) so that the prior turns no further
than the camera can (`MotionPrior.pitch_limit`) and spins a view that looks up or down as a turn
sideways does, and tells the network the pitch turn the camera makes: past the limit, none.

Still frames (`still_level=LEVEL`, with the motion prior): a frame whose input holds the view still
starts from the rest frame noised to LEVEL with the rest frame's own sampling noise: the newest frame
that an input made (a move, an attack, a hotbar key; before any, the start), its latent as committed.
A run of frames under no input is then redraws of one frame alike, not a chain of redraws of redraws
whose small errors add up (from pure noise the network alone drifts into one flat picture within a
few hundred frames), nor redraws that differ by their noise (a shimmer the IDM reads as steps).
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np
import torch
from tqdm import tqdm

from gameworld.actions import Action
from gameworld.metrics.motion import apply_motion
from gameworld.modeldir import GameWorldConfig, load_model_dir
from gameworld.models.dit import NextFrameDiT
from gameworld.models.tokenizer import FrameTokenizer
from gameworld.motion_prior import (
    PRIOR_NAME,
    MotionPrior,
    feature_names,
    find_motion_prior,
    moves_view,
)
from gameworld.starts import fit_frames, read_start_video
from gameworld.streaming import FrameStream, Sampling

# Settings that shape the stream itself: changing one rebuilds it from the current context.
STREAM_FIELDS = ("use_cache", "speculative", "seed", "window")


@dataclass(frozen=True)
class EngineSettings:
    """How `WorldEngine` generates; `EngineSettings.from_config` takes the sampler fields from the model."""

    steps: int = 4  # denoising steps per frame (a distilled student: 1-4)
    sampler: str = "euler"  # "euler" or "heun"
    shift: float = 1.0  # time-grid shift (> 1 spends the steps at high noise)
    context_noise: float = 0.02  # noise level committed frames are held at
    guidance: float = 1.0  # action guidance scale (1 = off)
    temperature: float = 1.0  # scale of each new frame's starting noise (1 = the model's own prior)
    motion_prior: float | None = None  # start level from the last frame moved by the motion prior (None: off)
    still_level: float | None = None  # with motion_prior: a still frame's start level from the rest frame
    window: int | None = None  # frames a new frame attends to, itself included (None: context_frames)
    use_cache: bool = True  # False: re-encode the whole window for every new frame
    speculative: int = 0  # frames generated ahead of their action while it holds (0 = off)
    joint: bool = True  # speculative frames denoised in one pass (True) or one after another (exact)
    compile: bool = False  # torch.compile the transformer blocks (a GPU speed-up; none seen on a 2-core CPU)
    cuda_graphs: bool = False  # CUDA only: compile in "reduce-overhead" mode, which captures CUDA graphs
    seed: int = 0  # noise seed: a rollout is a function of seed, start and actions

    def __post_init__(self) -> None:
        if self.motion_prior is not None and not 0.0 < self.motion_prior < 1.0:
            raise ValueError(
                f"motion_prior must be a noise level in (0, 1) or None (off), got {self.motion_prior}"
            )
        if self.still_level is not None and not 0.0 < self.still_level < 1.0:
            raise ValueError(
                f"still_level must be a noise level in (0, 1) or None (off), got {self.still_level}"
            )
        _ = self.sampling  # Sampling validates the sampler fields
        if not isinstance(self.speculative, int) or self.speculative < 0:
            raise ValueError(f"speculative must be an integer >= 0 (frames ahead), got {self.speculative!r}")
        if self.window is not None and (not isinstance(self.window, int) or self.window < 2):
            raise ValueError(f"window must be an integer >= 2 frames, got {self.window!r}")

    @property
    def sampling(self) -> Sampling:
        return Sampling(
            self.steps, self.sampler, self.shift, self.context_noise, self.guidance, self.temperature,
            self.motion_prior or 1.0,
        )

    @classmethod
    def from_config(cls, config: GameWorldConfig, **overrides) -> EngineSettings:
        """Sampler defaults from `gameworld.json`, then `overrides` (any field; unknown ones are an error)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown engine setting(s) {unknown}; known: {sorted(known)}")
        return cls(**{**asdict(config.sampler), **overrides})


@dataclass
class EngineStats:
    """What a HUD shows; reset with the engine."""

    frames: int = 0  # frames handed out by step()
    generated: int = 0  # frames the model denoised (speculative ones included)
    speculated: int = 0  # frames denoised ahead of their action
    accepted: int = 0  # speculative frames handed out
    rejected: int = 0  # speculative frames dropped (their action did not come)
    time_saved_s: float = 0.0  # wall time speculation saved against the measured one-frame step
    last_latency_s: float = 0.0  # wall time of the last step(), decoding included
    single_step_s: float | None = None  # running mean latency of a non-speculative step

    @property
    def acceptance_rate(self) -> float | None:
        decided = self.accepted + self.rejected
        return self.accepted / decided if decided else None

    def as_dict(self) -> dict:
        return {**asdict(self), "acceptance_rate": self.acceptance_rate}


@dataclass(frozen=True)
class _Rest:
    """What still frames start from: the newest frame an input made (or the start)."""

    latent: torch.Tensor  # [1, 1, C, h, w], as committed
    index: int  # its frame number in the stream: still frames start from its sampling noise too


@dataclass
class _Speculation:
    """Frames committed ahead under `action`, waiting for it to come."""

    action: Action
    latents: deque = field(default_factory=deque)  # [C, h, w] each, oldest first


def default_device() -> torch.device:
    """cuda > mps > cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_dtype(device: torch.device | str) -> torch.dtype:
    """bf16 on a GPU, fp32 on the CPU (bf16 was 1.24x faster per model call on an avx512_bf16 CPU, but
    its frames are not yet checked against fp32: pass dtype=torch.bfloat16 to try it)."""
    return torch.float32 if torch.device(device).type == "cpu" else torch.bfloat16


class WorldEngine:
    """Streaming next-frame generation for one player: all state lives in the object."""

    def __init__(
        self,
        config: GameWorldConfig,
        tokenizer: FrameTokenizer,
        world_model: NextFrameDiT,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        prior: MotionPrior | None = None,
        **settings,
    ) -> None:
        """Drive `world_model` on `device` (default: where it is) in `dtype` (default: its own).

        The models are moved and cast in place; `settings` are `EngineSettings` fields. The
        `motion_prior` setting needs the `prior` to move the last frame with.
        """
        self.config = config
        self.prior = prior
        self.space = config.space
        self.settings = EngineSettings.from_config(config, **settings)
        self.device = torch.device(device) if device is not None else world_model.device
        self.dtype = dtype or world_model.dtype
        self.model = world_model.to(self.device).eval()
        self.tokenizer = tokenizer.to(self.device).eval()
        if self.model.dtype != self.dtype:
            self.model.to(self.dtype)
            self.tokenizer.to(self.dtype)
        self._check_model()
        self._compile()
        self.stream = self._new_stream(self.settings)
        self.stats = EngineStats()
        self.frame: np.ndarray | None = None  # the newest frame handed out
        self._previous: Action | None = None  # the action of the newest frame
        self._pitch = 0.0  # the newest frame's pitch in degrees, a start taken as level (motion prior)
        self._rest: _Rest | None = None
        self._speculation: _Speculation | None = None
        self._single_steps = 0  # non-speculative steps since reset (for the running mean)

    @classmethod
    def from_pretrained(
        cls,
        dir_or_name: str | os.PathLike = "default",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **settings,
    ) -> WorldEngine:
        """Load a model directory (or a shipped model's name) on `device` (default cuda > mps > cpu)."""
        device = torch.device(device) if device is not None else default_device()
        config, tokenizer, world_model = load_model_dir(dir_or_name, device)
        prior = find_motion_prior(dir_or_name)
        return cls(config, tokenizer, world_model, device, dtype or default_dtype(device), prior, **settings)

    # ------------------------------------------------------------------------------------ setup

    def _check_model(self) -> None:
        cfg, config = self.model.config, self.config
        latent = self.tokenizer.latent_shape(config.height, config.width)
        if latent != (cfg.in_channels, cfg.latent_height, cfg.latent_width):
            raise ValueError(
                f"the tokenizer makes latents {latent} from {config.width}x{config.height} frames, but the "
                f"world model expects {(cfg.in_channels, cfg.latent_height, cfg.latent_width)}"
            )
        if cfg.action_dim != self.space.dim:
            raise ValueError(
                f"the world model takes {cfg.action_dim}-dim actions, the action space gives {self.space.dim}"
            )
        window = self._window(self.settings)
        if not cfg.sink_frames + 2 <= window <= cfg.max_frames:
            raise ValueError(
                f"window {window}: this world model attends to {cfg.sink_frames + 2}..{cfg.max_frames} "
                f"frames (gameworld.json context_frames {config.context_frames}, max_frames {cfg.max_frames})"
            )
        if self.settings.cuda_graphs and self.device.type != "cuda":
            raise ValueError(f"cuda_graphs needs a CUDA device; the engine runs on {self.device}")
        self._check_prior(self.settings)

    def _check_prior(self, settings: EngineSettings) -> None:
        if settings.motion_prior is not None and self.prior is None:
            raise ValueError(
                f"motion_prior={settings.motion_prior}: this model has no {PRIOR_NAME} "
                "(python -m training.fit_motion_prior writes one)"
            )
        if self.prior is not None and self.prior.features != feature_names(self.space):
            raise ValueError(
                f"the motion prior reads features {self.prior.features}, not this action space's keys"
            )

    def _compile(self) -> None:
        """Compile each transformer block (its shapes settle once the cache holds a full window)."""
        if self.settings.compile or self.settings.cuda_graphs:
            mode = "reduce-overhead" if self.settings.cuda_graphs else None
            for block in self.model.blocks:
                block.compile(mode=mode)

    def _window(self, settings: EngineSettings) -> int:
        """Frames a new frame attends to, itself included: the setting, else context_frames."""
        return settings.window or self.config.context_frames

    def _new_stream(self, settings: EngineSettings) -> FrameStream:
        return FrameStream(
            self.model, self._window(settings), settings.speculative, settings.use_cache, settings.seed
        )

    def configure(self, **changes) -> None:
        """Change settings between steps. Sampler fields apply to the next frame; `use_cache`,
        `speculative`, `seed` and `window` rebuild the stream from its current context; `compile`
        and `cuda_graphs` are fixed at construction."""
        settings = replace(self.settings, **changes)
        self._check_prior(settings)
        fixed = [name for name in ("compile", "cuda_graphs") if name in changes
                 and getattr(settings, name) != getattr(self.settings, name)]
        if fixed:
            raise ValueError(f"{fixed} cannot change on a running engine: make a new one")
        rebuild = any(getattr(settings, name) != getattr(self.settings, name) for name in STREAM_FIELDS)
        stream = self._new_stream(settings) if rebuild else self.stream  # a bad window fails here
        self._drop_speculation()
        if rebuild and self.stream.num_frames:
            stream.restore(*self.stream.context(), num_frames=self.stream.num_frames)
        self.settings, self.stream = settings, stream

    # ------------------------------------------------------------------------------------ start

    def reset(
        self,
        frames: np.ndarray | Sequence[np.ndarray] | None = None,
        actions: Sequence[Action] | None = None,
        seed: int = 0,
        biome: str = "plains",
        video: str | os.PathLike | None = None,
    ) -> np.ndarray:
        """Start a new rollout and return its current frame (uint8 [H, W, 3]).

        From `frames` (uint8 [T, H, W, 3] or [H, W, 3], with `actions[t]` the action that made
        frame t; default null), from the first frames of `video` (an episode or a plain video file),
        or else from the voxel game's first frame in `biome` with world seed `seed`. Frames of another
        size are centre-cropped and resized to the model's resolution.
        """
        width, height = self.config.width, self.config.height
        if frames is not None and video is not None:
            raise ValueError("reset: give frames or video, not both")
        if video is not None:
            if actions is not None:
                raise ValueError("reset: a video brings its own actions (or none); do not pass actions")
            frames, actions = read_start_video(video, self.stream.window - 1)
        elif frames is None:
            from gameworld.voxel import VoxelWorld

            frames = VoxelWorld(seed=seed, biome=biome, width=width, height=height).reset()[None]
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
            raise ValueError(f"reset: frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
        actions = [Action.null()] * len(frames) if actions is None else list(actions)
        if len(actions) != len(frames):
            raise ValueError(f"reset: {len(actions)} actions for {len(frames)} frames")
        actions = [self.space.resolve(a) for a in actions]
        frames = fit_frames(frames, width, height)

        self._speculation = None
        self.stream.reset()
        self.stats = EngineStats()
        self._single_steps = 0
        latents = self.tokenizer.encode(frames[None])  # [1, T, C, h, w]
        self.stream.commit(latents, self._encode(actions), self.settings.sampling)
        self.frame = frames[-1].copy()
        self._rest = _Rest(latents[:, -1:], self.stream.num_frames - 1)
        self._previous = actions[-1]
        self._pitch = 0.0
        self._track_pitch(actions[1:])  # actions[0] made the first frame
        return self.frame

    # ------------------------------------------------------------------------------------ steps

    def step(self, action: Action) -> np.ndarray:
        """The next frame (uint8 [H, W, 3]) under `action`."""
        if self._previous is None:
            raise RuntimeError("call reset() before step()")
        start = time.perf_counter()
        action = self._turnable(self.space.resolve(action))
        speculation = self._speculation
        if speculation is not None and speculation.action == action:
            latent = speculation.latents.popleft()
            self.stats.accepted += 1
            if not speculation.latents:
                self._speculation = None
        else:
            self._drop_speculation()
            ahead = self.settings.speculative if action == self._previous else 0
            latent = self._generate(action, ahead)
            speculation = self._speculation
        self.frame = self.tokenizer.decode(latent[None, None])[0, 0].cpu().numpy()  # [H, W, 3]
        if not action.is_null:  # the view or the world may have changed: this frame is the new rest
            waiting = len(self._speculation.latents) if self._speculation is not None else 0  # after it
            self._rest = _Rest(latent[None, None], self.stream.num_frames - 1 - waiting)
        self._previous = action
        self._track_pitch([action])
        self._account(time.perf_counter() - start, speculative=speculation is not None)
        return self.frame

    def rollout(self, actions: Sequence[Action], progress: bool = False) -> np.ndarray:
        """Frames (uint8 [T, H, W, 3]) for `actions`, one `step` each."""
        steps = tqdm(actions, desc="rollout", unit="frame", disable=not progress)
        frames = [self.step(action) for action in steps]
        if not frames:
            return np.zeros((0, self.config.height, self.config.width, 3), dtype=np.uint8)
        return np.stack(frames)

    @property
    def num_frames(self) -> int:
        """Frames committed since the last reset (start frames and speculative ones included)."""
        return self.stream.num_frames

    def _encode(self, actions: Sequence[Action]) -> torch.Tensor:
        return self.space.encode(actions)[None].to(self.device, self.dtype)  # [1, T, A]

    def _generate(self, action: Action, ahead: int) -> torch.Tensor:
        """Denoise and commit the frame of `action` and `ahead` more under it; return the first [C, h, w]."""
        encoded = self._encode([action])  # [1, 1, A]
        motions = self._prior_motions(action, 1 + ahead)  # [1 + ahead, 4] or None
        if self.settings.joint:
            actions = encoded.expand(1, 1 + ahead, -1)
            cumulative = None if motions is None else np.cumsum(motions, axis=0)  # the first decides for all
            starts, sampling, noise_of = self._starts(self.frame, cumulative, self._rest, 1 + ahead)
            latents = self.stream.sample(actions, sampling, starts, noise_of)  # [1, 1 + ahead, C, h, w]
            self.stream.commit(latents, actions, sampling)
        else:
            parts, frame, rest = [], self.frame, self._rest
            for index in range(1 + ahead):
                motion = None if motions is None else motions[index : index + 1]
                start, sampling, noise_of = self._starts(frame, motion, rest, 1)
                parts.append(self.stream.sample(encoded, sampling, start, noise_of))
                self.stream.commit(parts[-1], encoded, sampling)
                if not action.is_null:  # as `step` will make it
                    rest = _Rest(parts[-1], self.stream.num_frames - 1)
                if motions is not None and index < ahead:  # the next frame may start from this one moved
                    frame = self.tokenizer.decode(parts[-1])[0, 0].cpu().numpy()
            latents = torch.cat(parts, dim=1)
        self.stats.generated += 1 + ahead
        if ahead:
            self.stats.speculated += ahead
            self._speculation = _Speculation(action, deque(latents[0, 1:]))
        return latents[0, 0]

    def _prior_motions(self, action: Action, count: int) -> np.ndarray | None:
        """With the motion_prior setting: the prior's (zoom, pan_x, pan_y, roll) [count, 4] of `count`
        frames of `action` held from the newest frame's pitch; else None."""
        if self.settings.motion_prior is None:
            return None
        return self.prior.held(action, count, self._pitch)

    def _moves(self, motion: np.ndarray) -> bool:
        """Whether `motion` moves the view (else the frame starts from the rest frame or pure noise)."""
        return moves_view(motion, self.config.width, self.config.height)

    def _starts(
        self, frame: np.ndarray, motions: np.ndarray | None, rest: _Rest, count: int
    ) -> tuple[torch.Tensor | None, Sampling, int | None]:
        """What `count` new frames start from (latents [1, count, C, h, w], None: pure noise), the
        sampling that goes with it and the frame whose noise they take (None: each its own): `frame`
        moved by each of `motions` [count, 4] when the first moves the view; else (a still view)
        `rest` and its noise when the still_level setting asks for it, so that frames under no input
        redraw it alike, as the game's view holds one picture."""
        sampling = self.settings.sampling
        if motions is not None and self._moves(motions[0]):
            return self._moved_starts(frame, motions), sampling, None
        if motions is not None and self.settings.still_level is not None:
            still = replace(sampling, start_level=self.settings.still_level)
            return rest.latent.expand(1, count, -1, -1, -1), still, rest.index
        return None, replace(sampling, start_level=1.0), None

    def _moved_starts(self, frame: np.ndarray, motions: np.ndarray) -> torch.Tensor:
        """Latents [1, N, C, h, w] of `frame` (uint8 [H, W, 3]) moved by each of `motions` [N, 4]:
        the guesses sampling starts from."""
        moved = np.stack([apply_motion(frame, motion) for motion in motions])  # [N, H, W, 3]
        return self.tokenizer.encode(moved[None]).to(self.device, self.dtype)

    def _turnable(self, action: Action) -> Action:
        """With the motion_prior setting: `action` with its pitch turn cut to what the camera still
        makes (none past the limit, where the game's view stands still). The network is told the
        turn the view makes: asked for one the view cannot make, it draws blur that reads as a turn."""
        if self.settings.motion_prior is None:
            return action
        dpitch, dyaw = action.camera
        made = self.prior.pitch_turn(self._pitch, dpitch)
        return action if made == dpitch else Action(action.keys, (made, dyaw))

    def _track_pitch(self, actions: Sequence[Action]) -> None:
        """Turn the view's pitch (degrees from level: a start is taken as level) by `actions`."""
        if self.prior is not None:
            self._pitch = self.prior.pitch_after(self._pitch, actions)

    def _drop_speculation(self) -> None:
        """Forget the frames generated ahead for an action that did not come; roll the cache back."""
        if self._speculation is None:
            return
        dropped = len(self._speculation.latents)
        self.stream.rollback(self.stream.num_frames - dropped)
        self.stats.rejected += dropped
        self._speculation = None

    def _account(self, latency: float, speculative: bool) -> None:
        stats = self.stats
        stats.frames += 1
        stats.last_latency_s = latency
        if not speculative:
            self._single_steps += 1
            mean = stats.single_step_s
            weight = 1 / min(self._single_steps, 50)
            stats.single_step_s = latency if mean is None else mean + weight * (latency - mean)
        elif stats.single_step_s is not None:
            stats.time_saved_s += stats.single_step_s - latency
