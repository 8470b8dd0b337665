"""Train the frame tokenizer (a diffusers autoencoder) on episode frames.

    python -m training.train_tokenizer --config training/configs/tokenizer_default.yaml \\
        data.episodes=data/voxel validation.episodes=data/voxel_val train.out_dir=runs/tokenizer

Loss: L1 + (1 - SSIM) + image-gradient L1, plus an optional patch GAN (hinge) once `loss.gan`
is above zero. Held-out reconstruction PSNR is reported at each validation. At the end the
latents are calibrated to zero mean and unit variance on training frames, and the tokenizer
directory (`<train.out_dir>/tokenizer` unless `out=`) is written with the EMA weights.

Decoder only (`init_from=DIR train_encoder=false`): the encoder, shift and scale of the tokenizer in
DIR are kept and only the decoder learns (its own, or a new one: `overrides` such as a wider
`decoder_block_out_channels`). The latents stay exactly what they were, so latent shards and world
models made with DIR work with the new tokenizer unchanged (it keeps DIR's `fingerprint`):

    python -m training.train_tokenizer --config training/configs/decoder_default.yaml \
        init_from=runs/tokenizer/tokenizer train.out_dir=runs/decoder
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import yaml
from torch.func import functional_call

from gameworld.atomic import write_text_atomic
from gameworld.data import ClipDataset
from gameworld.metrics.image import mse, psnr_of_mse
from gameworld.models import DEFAULT_TOKENIZER, FrameTokenizer
from gameworld.models.tokenizer import on_decoding_path
from training import distributed
from training.config import to_dict
from training.distributed import DistEnv
from training.image_losses import PatchDiscriminator, gradient_loss, hinge_discriminator_loss, ssim
from training.job import run_job
from training.trainer import Trainer, TrainerConfig


@dataclass
class FramesConfig:
    episodes: str = "data/voxel"  # folder of training episodes
    clip_len: int = 4  # consecutive frames read per item (one video seek); each frame is a sample
    stride: int | None = None  # frames between item starts (default: clip_len)


@dataclass
class ReconstructionLossConfig:
    l1: float = 1.0
    ssim: float = 0.5  # weight of (1 - SSIM)
    gradient: float = 0.5
    gan: float = 0.0  # weight of the adversarial term; 0 = no discriminator
    gan_start: int = 0  # steps before the adversarial term reaches the autoencoder (D trains from 0)
    disc_channels: int = 32


@dataclass
class ReconstructionValidation:
    episodes: str | None = None  # held-out episodes
    frames: int = 64  # held-out frames scored


@dataclass
class TokenizerJob:
    tokenizer: str = DEFAULT_TOKENIZER  # a name in TOKENIZER_CONFIGS
    overrides: dict = field(default_factory=dict)  # autoencoder config fields over the named config
    init_from: str | None = None  # a tokenizer directory whose weights start the run (see `initialise_from`)
    train_encoder: bool = True  # false: only the decoder learns; init_from's latents are kept exactly
    out: str | None = None  # tokenizer directory to write; default <train.out_dir>/tokenizer
    calibration_frames: int = 256  # training frames that set the latent shift and scale
    data: FramesConfig = field(default_factory=FramesConfig)
    loss: ReconstructionLossConfig = field(default_factory=ReconstructionLossConfig)
    validation: ReconstructionValidation = field(default_factory=ReconstructionValidation)
    train: TrainerConfig = field(default_factory=TrainerConfig)

    def __post_init__(self) -> None:
        if not self.train_encoder and not self.init_from:
            raise ValueError("train_encoder=false keeps the encoder of another tokenizer: set init_from to "
                             "its directory")

    def build_tokenizer(self) -> FrameTokenizer:
        """A fresh tokenizer of this job's config and overrides."""
        return FrameTokenizer.from_config(self.tokenizer, **self.overrides)


def initialise_from(tokenizer: FrameTokenizer, path: str) -> bool:
    """Copy the weights, shift and scale of the tokenizer directory `path`; True if its decoder came too.

    The encoding side (everything but the decoder) must have the same names and shapes; the decoder
    is copied when it matches as well, and otherwise stays fresh: a new decoder for the same latents.
    """
    source, target = FrameTokenizer.from_pretrained(path).state_dict(), tokenizer.state_dict()

    def matching(decoding: bool) -> bool:
        names = {n for n in target if on_decoding_path(n) == decoding}
        theirs = {n for n in source if on_decoding_path(n) == decoding}
        return names == theirs and all(source[n].shape == target[n].shape for n in names)

    if not matching(decoding=False):
        raise ValueError(f"{path}: its encoder differs from the one this job builds (tokenizer and "
                         "overrides must give the same encoder and latent channels)")
    with_decoder = matching(decoding=True)
    tokenizer.load_state_dict({n: t for n, t in source.items() if with_decoder or not on_decoding_path(n)},
                              strict=with_decoder)
    return with_decoder


def to_images(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames [B, T, H, W, 3] -> float images [B*T, 3, H, W] in [-1, 1]."""
    return frames.flatten(0, 1).permute(0, 3, 1, 2).float() / 127.5 - 1.0


class TokenizerTrainee(nn.Module):
    """The tokenizer plus (optionally) its discriminator; `forward` returns the whole loss.

    Everything happens inside `forward` so that DDP sees one forward per step. The adversarial
    term reaches the autoencoder through a frozen view of the discriminator; the discriminator
    learns from its own hinge loss on detached reconstructions.
    """

    def __init__(
        self, tokenizer: FrameTokenizer, cfg: ReconstructionLossConfig, train_encoder: bool = True
    ) -> None:
        super().__init__()
        self.tokenizer, self.cfg, self.train_encoder = tokenizer, cfg, train_encoder
        if not train_encoder:
            for name, param in tokenizer.named_parameters():
                param.requires_grad_(on_decoding_path(name))
        self.discriminator = PatchDiscriminator(cfg.disc_channels) if cfg.gan > 0 else None

    def forward(self, frames: torch.Tensor, adversarial: float = 0.0) -> tuple[torch.Tensor, dict]:
        cfg = self.cfg
        images = to_images(frames)  # [N, 3, H, W]
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.train_encoder):
            latents = self.tokenizer._encode_raw(images)  # [N, C, h, w]
        recon = self.tokenizer._decode_raw(latents)  # [N, 3, H, W]
        l1 = (recon - images).abs().mean()
        similarity = ssim(recon, images)
        loss = cfg.l1 * l1 + cfg.ssim * (1 - similarity) + cfg.gradient * gradient_loss(recon, images)
        metrics = {"l1": l1.detach(), "ssim": similarity.detach()}
        if self.discriminator is not None:
            frozen = {name: p.detach() for name, p in self.discriminator.named_parameters()}
            generator_term = -functional_call(self.discriminator, frozen, (recon,)).mean()
            real, fake = self.discriminator(images), self.discriminator(recon.detach())
            disc_loss = hinge_discriminator_loss(real, fake)
            loss = loss + adversarial * generator_term + disc_loss
            metrics["disc_loss"] = disc_loss.detach()
        return loss, metrics


def tokenizer_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The `tokenizer.` part of a trainee state dict, with the prefix removed."""
    return {k.removeprefix("tokenizer."): v for k, v in state.items() if k.startswith("tokenizer.")}


def gather_frames(clips: ClipDataset, count: int) -> torch.Tensor:
    """uint8 [1, n, H, W, 3]: the first `count` frames of the clips in the dataset's order."""
    frames, total = [], 0
    for index in range(len(clips)):
        clip = clips[index][0]  # [T, H, W, 3]
        frames.append(clip)
        total += len(clip)
        if total >= count:
            break
    return torch.cat(frames)[:count][None]


class ReconstructionPSNR:
    """Held-out reconstruction PSNR of the EMA tokenizer, of the squared error pooled over the frames
    (as `eval.score` pools it; rank 0, every rank joins the gather)."""

    def __init__(self, cfg: TokenizerJob) -> None:
        self.cfg = cfg
        self.frames = None
        if cfg.validation.episodes:
            held_out = ClipDataset(cfg.validation.episodes, cfg.data.clip_len, seed=0)
            self.frames = gather_frames(held_out, cfg.validation.frames)

    def eval_tokenizer(self, trainer: Trainer) -> FrameTokenizer:
        tokenizer = self.cfg.build_tokenizer()
        tokenizer.load_state_dict(tokenizer_weights(trainer.ema_state_dict()))
        return tokenizer.to(trainer.device).eval()

    def __call__(self, trainer: Trainer) -> dict[str, float]:
        tokenizer = self.eval_tokenizer(trainer)
        if self.frames is None or not trainer.env.is_main:
            return {}
        recon = tokenizer.decode(tokenizer.encode(self.frames.to(trainer.device))).cpu()
        return {"recon_psnr": float(psnr_of_mse(np.mean(mse(recon, self.frames))))}


def run(cfg: TokenizerJob, env: DistEnv) -> Path | None:
    """Train (or resume) and export; returns the tokenizer directory, or None when stopped by a signal."""
    torch.manual_seed(cfg.train.seed)
    clips = ClipDataset(cfg.data.episodes, cfg.data.clip_len, stride=cfg.data.stride, seed=cfg.train.seed,
                        rank=env.rank, world_size=env.world_size)
    tokenizer = cfg.build_tokenizer()
    if cfg.init_from:
        with_decoder = initialise_from(tokenizer, cfg.init_from)
        if env.is_main:
            what = "encoder and decoder" if with_decoder else "its encoder; a new decoder"
            print(f"started from {cfg.init_from} ({what})", file=sys.stderr)
    trainee = TokenizerTrainee(tokenizer, cfg.loss, cfg.train_encoder)
    trainer: Trainer | None = None

    def loss(model, batch, generator):
        frames, _ = batch  # uint8 [B, T, H, W, 3], actions unused
        adversarial = cfg.loss.gan if trainer.step >= cfg.loss.gan_start else 0.0
        return model(frames, adversarial=adversarial)

    trainer = Trainer(cfg.train, trainee, clips, loss, env, config=to_dict(cfg))
    if env.is_main:
        write_text_atomic(trainer.out_dir / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    validation = ReconstructionPSNR(cfg)
    if not trainer.fit(validate=validation):
        return None
    tokenizer = validation.eval_tokenizer(trainer)
    out = Path(cfg.out or trainer.out_dir / "tokenizer")
    if env.is_main:
        if cfg.train_encoder:
            calibration = ClipDataset(cfg.data.episodes, cfg.data.clip_len, seed=cfg.train.seed)  # epoch 0
            tokenizer.calibrate(gather_frames(calibration, cfg.calibration_frames).to(env.device))
        tokenizer.cpu().save_pretrained(out)
        source = "calibrated" if cfg.train_encoder else f"kept from {cfg.init_from}"
        print(f"tokenizer written to {out} (latent shift {tokenizer.shift.mean():.3f}, scale "
              f"{tokenizer.scale.mean():.3f} on average, {source})", file=sys.stderr)
    distributed.barrier(env)
    return out


def main(argv: list[str] | None = None) -> int:
    return run_job(
        "train_tokenizer", argv, TokenizerJob, run, __doc__, "training/configs/tokenizer_default.yaml"
    )


if __name__ == "__main__":
    sys.exit(main())
