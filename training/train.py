"""Train the world model (NextFrameDiT, flow matching with one noise level per frame) on latent shards.

    python -m training.train --config training/configs/smoke.yaml data.shards=data/latents \\
        tokenizer=runs/tokenizer/tokenizer train.out_dir=runs/world
    torchrun --nproc_per_node 8 -m training.train --config training/configs/310m.yaml ...

Any field of the recipe can be overridden as `section.field=value`. The job resumes from
`<train.out_dir>/checkpoints` when run again, validates on held-out data (next-frame loss,
rollout PSNR, sample mp4s), and finally writes a model directory (`<train.out_dir>/model`
unless `out=` says otherwise) that `WorldEngine.from_pretrained` loads, with the EMA weights.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from gameworld.atomic import write_text_atomic
from gameworld.data import ClipDataset
from gameworld.diffusion import FlowMatchingConfig, flow_matching_loss, rollout_latents
from gameworld.modeldir import GameWorldConfig, SamplerDefaults, load_model_dir, save_model_dir
from gameworld.models import FrameTokenizer, NextFrameDiT
from training import distributed
from training.config import to_dict
from training.distributed import DistEnv
from training.job import run_job
from training.rollouts import ValidationConfig, held_out_episodes, next_frame_loss, rollout_psnr
from training.trainer import Trainer, TrainerConfig


@dataclass
class DataConfig:
    shards: str = "data/latents"  # directory of latent shards (datasets/encode_latents.py)
    clip_len: int = 16  # frames per training clip
    stride: int | None = None  # frames between clip starts (default: clip_len, no overlap)


@dataclass
class ModelConfig:
    size: str = "tiny"  # a name in MODEL_SIZES
    overrides: dict = field(default_factory=dict)  # any NextFrameDiT field (hidden_size, max_frames, ...)
    init_from: str | None = None  # a model directory whose weights start a new run (see `initialise_from`)


@dataclass
class RolloutConfig:
    """Teacher forcing on a frozen model's own rollouts: the drift a model meets at inference.

    With probability `probability` a batch's clean past is not the clip but `model`'s rollout of
    its actions from the clip's first frame (`rollout_latents`); the targets stay the true frames,
    so the world model learns to continue, and pull back to the game, a past with those errors.
    `model` is a model directory, best the distilled student that inference runs.
    """

    model: str | None = None
    probability: float = 0.5
    steps: int | None = None  # the rollout model's denoising steps per frame (default: its own)

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0 or (self.steps is not None and self.steps < 1):
            raise ValueError(f"rollout needs a probability in [0, 1] and steps >= 1, got {self}")


@dataclass
class WorldModelJob:
    tokenizer: str = "runs/tokenizer/tokenizer"  # the tokenizer directory that encoded the shards
    out: str | None = None  # model directory to write; default <train.out_dir>/model
    description: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    flow: FlowMatchingConfig = field(default_factory=FlowMatchingConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    sampler: SamplerDefaults = field(default_factory=SamplerDefaults)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    train: TrainerConfig = field(default_factory=TrainerConfig)


def build_model(cfg: WorldModelJob, clips: ClipDataset) -> NextFrameDiT:
    """A fresh model shaped for the shards' latents and actions; the window defaults to one clip."""
    channels, height, width = clips.shards.latent_shape
    shape = dict(in_channels=channels, latent_height=height, latent_width=width, action_dim=clips.space.dim)
    options = {"max_frames": cfg.data.clip_len, **cfg.model.overrides, **shape}
    model = NextFrameDiT.from_size(cfg.model.size, **options)
    if cfg.model.init_from:
        initialise_from(model, cfg.model.init_from)
    return model


def config_mismatch(there: NextFrameDiT, here: NextFrameDiT, keys: Iterable[str]) -> str:
    """"k is A there, B here" for each of `keys` where the two world models' configs differ ("" if none)."""
    return ", ".join(f"{k} is {there.config.get(k)} there, {here.config.get(k)} here"
                     for k in keys if there.config.get(k) != here.config.get(k))


def initialise_from(model: NextFrameDiT, path: str) -> None:
    """Copy the weights of the world model in `path` (a model directory or its `world_model/`).

    The two must agree on every config field but the attention backend and `previous_frame_input`:
    a model trained without that input path continues with it, the path starting from its zero init
    (the same function).
    """
    directory = Path(path) / "world_model" if (Path(path) / "world_model").is_dir() else Path(path)
    source = NextFrameDiT.from_pretrained(directory)
    free = {"previous_frame_input", "attention_backend"}
    keys = sorted(k for k in set(model.config) | set(source.config)
                  if not k.startswith("_") and k not in free)
    mismatch = config_mismatch(source, model, keys)
    if mismatch:
        raise ValueError(f"{directory}: cannot start from this model: {mismatch}")
    if source.previous_embed is not None and model.previous_embed is None:
        raise ValueError(f"{directory}: this model reads the previous frame; set "
                         "model.overrides.previous_frame_input=true to continue it")
    gains_input = model.previous_embed is not None and source.previous_embed is None
    model.load_state_dict(source.state_dict(), strict=not gains_input)


class RolloutContext:
    """Draws, per batch, the clean past of `RolloutConfig`: a frozen model's rollout, or None (the clip)."""

    def __init__(self, cfg: RolloutConfig, model: NextFrameDiT, tokenizer: FrameTokenizer,
                 context_noise: float, device: torch.device) -> None:
        config, roller_tokenizer, roller = load_model_dir(cfg.model)
        if roller_tokenizer.fingerprint() != tokenizer.fingerprint():
            raise ValueError(f"{cfg.model}: its tokenizer is not the one that encoded the training "
                             "latents, so it cannot roll them out")
        shape = ("in_channels", "latent_height", "latent_width", "action_dim")
        mismatch = config_mismatch(roller, model, shape)
        if mismatch:
            raise ValueError(f"{cfg.model}: cannot roll out the training clips: {mismatch}")
        self.roller = roller.to(device=device, dtype=torch.float32)  # a shipped model is stored in float16
        self.cfg, self.context_noise = cfg, context_noise
        self.steps = cfg.steps or config.sampler.steps

    def __call__(self, latents: torch.Tensor, actions: torch.Tensor,
                 generator: torch.Generator) -> torch.Tensor | None:
        if torch.rand((), generator=generator, device=latents.device) >= self.cfg.probability:
            return None
        return rollout_latents(self.roller, latents, actions.float(), latents.shape[1], self.steps,
                               self.context_noise, generator)


def flops_per_token(model: NextFrameDiT, clip_len: int) -> float:
    """Training FLOPs per token: 6 per weight, plus attention over the block-causal keys (~half a clip)."""
    cfg = model.config
    weights = sum(p.numel() for p in model.parameters())
    keys = model.tokens_per_frame * (min(clip_len, cfg.max_frames) + 1) / 2
    return 6 * weights + 12 * cfg.depth * cfg.hidden_size * keys


def check_tokenizer(tokenizer: FrameTokenizer, clips: ClipDataset, meta: dict, path: str) -> None:
    size = f"{meta['width']}x{meta['height']}"
    expected = tuple(tokenizer.latent_shape(meta["height"], meta["width"]))
    stored = tuple(clips.shards.latent_shape)
    if expected != stored:
        raise ValueError(f"{path}: this tokenizer makes latents {expected} from {size} frames, "
                         f"but the shards in {clips.shards.directory} hold {stored}")
    made_by, fingerprint = meta.get("tokenizer_fingerprint"), tokenizer.fingerprint()
    if made_by and made_by != fingerprint:
        raise ValueError(f"{clips.shards.directory}: these latents were made by another tokenizer "
                         f"(fingerprint {made_by}) than {path} ({fingerprint}); encode the "
                         "episodes again with datasets/encode_latents.py")


def model_config(cfg: WorldModelJob, meta: dict, model: NextFrameDiT, space_dict: dict) -> GameWorldConfig:
    return GameWorldConfig(
        width=meta["width"], height=meta["height"], fps=int(meta.get("fps", 20)),
        context_frames=model.config.max_frames, action_space=space_dict, sampler=cfg.sampler,
        description=cfg.description,
    )


class WorldModelValidation:
    """Next-frame loss and rollout PSNR of the EMA weights, on rank 0 (every rank joins the gather)."""

    def __init__(self, cfg: WorldModelJob, tokenizer: FrameTokenizer, config: GameWorldConfig) -> None:
        val = cfg.validation
        self.cfg, self.tokenizer, self.config = cfg, tokenizer, config
        self.clips = ClipDataset(val.shards, val.clip_len, seed=0) if val.shards else None
        length = val.context + val.frames
        self.episodes = held_out_episodes(val.episodes, val.rollouts, length) if val.episodes else []

    def eval_model(self, trainer: Trainer) -> NextFrameDiT:
        model = NextFrameDiT.from_config(trainer.module.config)
        model.load_state_dict(trainer.ema_state_dict())
        return model.to(trainer.device).eval()

    def __call__(self, trainer: Trainer) -> dict[str, float]:
        model = self.eval_model(trainer)  # collective under FSDP
        if not trainer.env.is_main:
            return {}
        values = {}
        if self.clips is not None:
            noise = self.cfg.sampler.context_noise
            values["next_frame_loss"] = next_frame_loss(model, self.clips, self.cfg.validation.clips, noise)
        if self.episodes:
            from gameworld.engine import WorldEngine

            # the network alone: a motion prior the model directory may bring stays off
            engine = WorldEngine(self.config, self.tokenizer, model, device=trainer.device, motion_prior=None)
            samples = Path(trainer.out_dir) / "samples" / f"step_{trainer.step:06d}"
            val = self.cfg.validation
            values.update(rollout_psnr(engine, self.episodes, val.context, val.frames,
                                       samples if val.samples else None))
        return values


def run(cfg: WorldModelJob, env: DistEnv) -> Path | None:
    """Train (or resume) and export; returns the model directory, or None when stopped by a signal."""
    torch.manual_seed(cfg.train.seed)
    clips = ClipDataset(cfg.data.shards, cfg.data.clip_len, stride=cfg.data.stride, seed=cfg.train.seed,
                        rank=env.rank, world_size=env.world_size)
    meta = clips.shards.meta
    missing = [key for key in ("width", "height") if key not in meta]
    if missing:
        raise ValueError(f"{cfg.data.shards}: shard meta lacks {missing}; write shards with "
                         "datasets/encode_latents.py")
    tokenizer = FrameTokenizer.from_pretrained(cfg.tokenizer).to(env.device).eval()
    check_tokenizer(tokenizer, clips, meta, cfg.tokenizer)
    model = build_model(cfg, clips)
    config = model_config(cfg, meta, model, clips.space.to_dict())

    rollout = None
    if cfg.rollout.model:
        rollout = RolloutContext(cfg.rollout, model, tokenizer, cfg.sampler.context_noise, env.device)

    def loss(net, batch, generator):
        latents, actions = batch  # [B, T, C, h, w] float16, [B, T, A]
        latents = latents.float()
        context = rollout(latents, actions, generator) if rollout else None
        return flow_matching_loss(net, latents, actions, cfg.flow, generator, context)

    trainer = Trainer(
        cfg.train, model, clips, loss, env, config=to_dict(cfg),
        # a teacher-forced clip runs twice its frames (a clean copy first): the tokens computed, on average
        tokens_per_item=round(cfg.data.clip_len * model.tokens_per_frame * (1 + cfg.flow.teacher_forcing)),
        flops_per_token=flops_per_token(model, cfg.data.clip_len),
    )
    if env.is_main:
        write_text_atomic(trainer.out_dir / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    validation = WorldModelValidation(cfg, tokenizer, config)
    if not trainer.fit(validate=validation):
        return None
    final = validation.eval_model(trainer).cpu()
    out = Path(cfg.out or trainer.out_dir / "model")
    if env.is_main:
        save_model_dir(out, config, tokenizer.cpu(), final)
        print(f"model directory written to {out}", file=sys.stderr)
    distributed.barrier(env)
    return out


def main(argv: list[str] | None = None) -> int:
    return run_job("train", argv, WorldModelJob, run, __doc__, "training/configs/default.yaml")


if __name__ == "__main__":
    sys.exit(main())
