"""Per-frame tokenizer: a diffusers autoencoder plus the shift/scale that give unit-variance latents.

    tok = FrameTokenizer.from_config("dc-f8c8")           # fresh, to be trained (training/)
    tok = FrameTokenizer.from_pretrained("path/to/dir")   # ours, or any diffusers autoencoder dir
    latents = tok.encode(frames)                          # uint8 [B, T, H, W, 3] -> [B, T, C, h, w]
    frames = tok.decode(latents)                          # -> uint8 [B, T, H, W, 3]

Latents are `(raw - shift) * scale` per channel, so the world model sees roughly unit variance;
`calibrate` measures shift and scale on real frames. A directory holds the autoencoder as diffusers
writes it (config.json + safetensors) and `gameworld_tokenizer.json` with the class, shift and
scale. A plain diffusers autoencoder directory (say an SD VAE, or a pipeline folder with `vae/`)
loads too, with shift/scale from its config's `shift_factor`/`scaling_factor`.

`TOKENIZER_CONFIGS` names small autoencoders we train ourselves; the default (`dc-f8c8`, a
pixel-shuffle decoder with no convolution at full resolution) decodes a 256x144 frame in about
12-20 ms on one core of a 2.5 GHz server CPU (`python -m eval.bench_model` prints it).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from gameworld.atomic import staged_directory

TOKENIZER_FILE = "gameworld_tokenizer.json"
DEFAULT_TOKENIZER = "dc-f8c8"
_NO_ATTENTION = ((), (), (), ())
TOKENIZER_CONFIGS: dict[str, dict] = {
    # The CPU default: pixel-shuffle decoder with no full-resolution convolutions.
    "dc-f8c8": dict(
        autoencoder="AutoencoderDC",
        config=dict(
            latent_channels=8,
            encoder_block_out_channels=(16, 32, 64, 64),
            decoder_block_out_channels=(8, 16, 32, 64),
            encoder_layers_per_block=(1, 1, 1, 1),
            decoder_layers_per_block=(0, 1, 1, 1),
            encoder_qkv_multiscales=_NO_ATTENTION,
            decoder_qkv_multiscales=_NO_ATTENTION,
        ),
    ),
    # Wider and deeper: better reconstructions, about 3x the decode time.
    "dc-f8c16": dict(
        autoencoder="AutoencoderDC",
        config=dict(
            latent_channels=16,
            encoder_block_out_channels=(16, 32, 64, 128),
            decoder_block_out_channels=(16, 32, 64, 128),
            encoder_layers_per_block=(1, 1, 1, 2),
            decoder_layers_per_block=(0, 1, 1, 2),
            encoder_qkv_multiscales=_NO_ATTENTION,
            decoder_qkv_multiscales=_NO_ATTENTION,
        ),
    ),
    # TAESD-style, narrower.
    "tiny-f8c4": dict(
        autoencoder="AutoencoderTiny",
        config=dict(
            latent_channels=4,
            encoder_block_out_channels=(32, 32, 32, 32),
            decoder_block_out_channels=(32, 32, 32, 32),
            num_encoder_blocks=(1, 1, 2, 2),
            num_decoder_blocks=(2, 2, 1, 0),
        ),
    ),
    # SD-style KL autoencoder, small, without the mid-block attention.
    "kl-f8c4": dict(
        autoencoder="AutoencoderKL",
        config=dict(
            latent_channels=4,
            block_out_channels=(32, 64, 128, 128),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=1,
            norm_num_groups=16,
            mid_block_add_attention=False,
        ),
    ),
}


# Parameter names on the decoding path (diffusers autoencoders: the decoder, and KL's post-quant conv).
DECODING_PREFIXES = ("autoencoder.decoder.", "autoencoder.post_quant_conv.")


def on_decoding_path(name: str) -> bool:
    """Whether a `FrameTokenizer` parameter or buffer only turns latents into frames (never the reverse)."""
    return name.startswith(DECODING_PREFIXES)


def _autoencoder_class(name: str, source: str) -> type:
    import diffusers

    cls = getattr(diffusers, str(name), None)
    if not (isinstance(cls, type) and name.startswith("Autoencoder") and hasattr(cls, "from_pretrained")):
        raise ValueError(f"{source}: {name!r} is not a diffusers autoencoder class")
    return cls


def _per_channel(value, channels: int, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(value if value is not None else 0.0, dtype=torch.float32).flatten()
    if tensor.numel() == 1:
        tensor = tensor.expand(channels).clone()
    if tensor.numel() != channels:
        raise ValueError(f"tokenizer {name} has {tensor.numel()} values for {channels} latent channels")
    return tensor


class FrameTokenizer(nn.Module):
    """A diffusers autoencoder applied frame by frame, with per-channel latent shift and scale."""

    def __init__(self, autoencoder: nn.Module, shift=0.0, scale=1.0) -> None:
        super().__init__()
        self.autoencoder = autoencoder
        channels = autoencoder.config.latent_channels
        self.register_buffer("shift", _per_channel(shift, channels, "shift"))
        self.register_buffer("scale", _per_channel(scale, channels, "scale"))

    @classmethod
    def from_config(cls, name: str = DEFAULT_TOKENIZER, **overrides) -> FrameTokenizer:
        """A fresh (untrained) tokenizer of a named config; `overrides` change autoencoder config fields."""
        if name not in TOKENIZER_CONFIGS:
            raise ValueError(f"unknown tokenizer config {name!r}; choose one of {sorted(TOKENIZER_CONFIGS)}")
        spec = TOKENIZER_CONFIGS[name]
        autoencoder_cls = _autoencoder_class(spec["autoencoder"], name)
        return cls(autoencoder_cls(**{**spec["config"], **overrides}))

    # ------------------------------------------------------------------------------ properties

    @property
    def latent_channels(self) -> int:
        return int(self.autoencoder.config.latent_channels)

    @functools.cached_property
    def downsample(self) -> int:
        """Spatial factor between frames and latents, measured once on a small blank image."""
        param = next(self.autoencoder.parameters())
        probe = torch.zeros(1, 3, 64, 64, device=param.device, dtype=param.dtype)
        with torch.no_grad():
            latent = self._encode_raw(probe)
        return 64 // latent.shape[-1]

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """(C, h, w) of the latents of a height x width frame."""
        factor = self.downsample
        if height % factor or width % factor:
            raise ValueError(
                f"frame size {width}x{height} must be divisible by the tokenizer's factor {factor}"
            )
        return self.latent_channels, height // factor, width // factor

    def fingerprint(self) -> str:
        """A short hash of what makes the latents: the encoding side's weights, shift and scale.

        Latents made by another tokenizer (or by this one before its encoder trained further) are not
        interchangeable with this one's; a decoder trained further on the same latents keeps it.
        """
        digest = hashlib.sha256()
        encoding = {name: t for name, t in self.state_dict().items() if not on_decoding_path(name)}
        for name, tensor in sorted(encoding.items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    # ------------------------------------------------------------------------------ raw autoencoder

    def _encode_raw(self, images: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] in [-1, 1] -> raw latents [N, C, h, w] (the mean for KL autoencoders)."""
        out = self.autoencoder.encode(images, return_dict=False)[0]
        return out if torch.is_tensor(out) else out.mode()  # KL: a DiagonalGaussianDistribution

    def _decode_raw(self, latents: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.decode(latents, return_dict=False)[0]

    def _latent_stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, -1, 1, 1)
        return self.shift.to(like).view(shape), self.scale.to(like).view(shape)

    # ------------------------------------------------------------------------------ frames <-> latents

    def _frames_to_images(self, frames) -> tuple[torch.Tensor, tuple[int, int]]:
        frames = torch.as_tensor(np.asarray(frames) if not torch.is_tensor(frames) else frames)
        if frames.ndim != 5 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
            raise ValueError(
                f"frames must be uint8 [B, T, H, W, 3], got {frames.dtype} {tuple(frames.shape)}"
            )
        batch, count, height, width, _ = frames.shape
        self.latent_shape(height, width)
        param = next(self.autoencoder.parameters())
        images = frames.reshape(batch * count, height, width, 3).permute(0, 3, 1, 2)
        images = images.to(device=param.device, dtype=param.dtype) / 127.5 - 1.0  # [N, 3, H, W]
        return images, (batch, count)

    @torch.no_grad()
    def encode(self, frames, chunk_size: int = 32) -> torch.Tensor:
        """uint8 frames [B, T, H, W, 3] (tensor or array) -> scaled latents [B, T, C, h, w] (float)."""
        images, (batch, count) = self._frames_to_images(frames)
        raw = torch.cat([self._encode_raw(chunk) for chunk in images.split(chunk_size)])  # [N, C, h, w]
        shift, scale = self._latent_stats(raw)
        latents = (raw - shift) * scale
        return latents.reshape(batch, count, *latents.shape[1:])

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, chunk_size: int = 32) -> torch.Tensor:
        """Scaled latents [B, T, C, h, w] -> uint8 frames [B, T, H, W, 3] (on the latents' device)."""
        if latents.ndim != 5 or latents.shape[2] != self.latent_channels:
            raise ValueError(
                f"latents must be [B, T, {self.latent_channels}, h, w], got {tuple(latents.shape)}"
            )
        batch, count = latents.shape[:2]
        param = next(self.autoencoder.parameters())
        flat = latents.reshape(batch * count, *latents.shape[2:]).to(device=param.device, dtype=param.dtype)
        shift, scale = self._latent_stats(flat)
        raw = flat / scale + shift
        images = torch.cat([self._decode_raw(chunk) for chunk in raw.split(chunk_size)])  # [N, 3, H, W]
        frames = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
        return frames.reshape(batch, count, *frames.shape[1:]).to(latents.device)

    @torch.no_grad()
    def calibrate(self, frames) -> tuple[torch.Tensor, torch.Tensor]:
        """Set shift/scale so that the latents of `frames` [B, T, H, W, 3] have zero mean, unit variance."""
        images, _ = self._frames_to_images(frames)
        raw = torch.cat([self._encode_raw(chunk) for chunk in images.split(32)]).float()  # [N, C, h, w]
        mean = raw.mean(dim=(0, 2, 3))
        std = raw.std(dim=(0, 2, 3)).clamp_min(1e-6)
        self.shift.copy_(mean)
        self.scale.copy_(1.0 / std)
        return self.shift.clone(), self.scale.clone()

    # ------------------------------------------------------------------------------ files

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        """The autoencoder (config.json + safetensors) and gameworld_tokenizer.json, atomically."""
        with staged_directory(save_directory) as staging:
            self.autoencoder.save_pretrained(staging, safe_serialization=True)
            meta = {
                "autoencoder": type(self.autoencoder).__name__,
                "shift": self.shift.tolist(),
                "scale": self.scale.tolist(),
            }
            (staging / TOKENIZER_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, subfolder: str | None = None) -> FrameTokenizer:
        """Load our tokenizer directory or any diffusers autoencoder directory (safetensors only)."""
        path = Path(directory) / (subfolder or "")
        if not (path / "config.json").is_file() and (path / "vae" / "config.json").is_file():
            path = path / "vae"  # a whole diffusers pipeline folder
        config_file = path / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"{path}: no config.json (not a diffusers autoencoder directory)")
        try:
            config = json.loads(config_file.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{config_file}: not valid JSON ({err})") from err
        meta_file = path / TOKENIZER_FILE
        if meta_file.is_file():
            try:
                meta = json.loads(meta_file.read_text())
                class_name, shift, scale = meta["autoencoder"], meta["shift"], meta["scale"]
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise ValueError(f"{meta_file}: not a tokenizer description ({err!r})") from err
        else:
            class_name = config.get("_class_name")
            shift = config.get("shift_factor") or 0.0
            scale = config.get("scaling_factor") or 1.0
        autoencoder_cls = _autoencoder_class(class_name, str(config_file))
        if not any(path.glob("*.safetensors")):
            raise FileNotFoundError(f"{path}: no .safetensors weights (pickle checkpoints are not loaded)")
        autoencoder = autoencoder_cls.from_pretrained(path, use_safetensors=True, low_cpu_mem_usage=False)
        try:
            return cls(autoencoder.eval(), shift, scale)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err
