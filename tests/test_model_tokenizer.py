"""FrameTokenizer: shapes, unit-variance scaling, files (ours and plain diffusers), bad input."""

import json

import numpy as np
import pytest
import torch
from diffusers import AutoencoderTiny

from gameworld.models.tokenizer import TOKENIZER_CONFIGS, TOKENIZER_FILE, FrameTokenizer


def clips(make_frames, batch: int = 2, frames: int = 3, height: int = 32, width: int = 48) -> torch.Tensor:
    """uint8 [B, T, H, W, 3]: `batch` different drifting colour fields (the shared `make_frames`)."""
    return torch.from_numpy(np.stack([make_frames(frames, height, width, seed=b) for b in range(batch)]))


@torch.no_grad()
@pytest.mark.parametrize("name", sorted(TOKENIZER_CONFIGS))
def test_named_configs_encode_and_decode_frame_batches(name, make_frames):
    tokenizer = FrameTokenizer.from_config(name).eval()
    frames = clips(make_frames)
    latents = tokenizer.encode(frames)
    channels = TOKENIZER_CONFIGS[name]["config"]["latent_channels"]
    assert latents.shape == (2, 3, channels, 4, 6) and latents.dtype == torch.float32
    assert tokenizer.latent_shape(32, 48) == (channels, 4, 6)
    decoded = tokenizer.decode(latents)
    assert decoded.shape == frames.shape and decoded.dtype == torch.uint8
    # frame by frame: encoding a clip equals encoding its frames one at a time
    assert torch.allclose(tokenizer.encode(frames[:, 1:2]), latents[:, 1:2], atol=1e-5)


@torch.no_grad()
def test_calibration_gives_unit_variance_latents_and_survives_saving(tmp_path, make_frames):
    tokenizer = FrameTokenizer.from_config("dc-f8c8").eval()
    frames = clips(make_frames, batch=3, frames=4)
    tokenizer.calibrate(frames)
    latents = tokenizer.encode(frames)  # [B, T, C, h, w]
    per_channel = latents.transpose(0, 2).flatten(1)  # [C, ...]
    assert torch.allclose(per_channel.mean(1), torch.zeros(8), atol=1e-4)
    assert torch.allclose(per_channel.std(1), torch.ones(8), atol=1e-3)
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer"]
    names = sorted(p.name for p in (tmp_path / "tokenizer").iterdir())
    assert names == ["config.json", "diffusion_pytorch_model.safetensors", TOKENIZER_FILE]
    loaded = FrameTokenizer.from_pretrained(tmp_path / "tokenizer")
    assert torch.equal(loaded.encode(frames), latents)
    assert torch.equal(loaded.decode(latents), tokenizer.decode(latents))


@torch.no_grad()
def test_plain_diffusers_directories_load_with_their_scaling_factor(tmp_path, make_frames):
    autoencoder = AutoencoderTiny(
        latent_channels=4,
        encoder_block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        scaling_factor=0.5,
        shift_factor=0.25,
    )
    autoencoder.save_pretrained(tmp_path / "pipeline" / "vae")  # as in a diffusers pipeline folder
    tokenizer = FrameTokenizer.from_pretrained(tmp_path / "pipeline")
    frames = clips(make_frames, batch=1, frames=2)
    raw = autoencoder.eval().encode(frames[0].permute(0, 3, 1, 2).float() / 127.5 - 1).latents  # [T, C, h, w]
    assert torch.allclose(tokenizer.encode(frames)[0], (raw - 0.25) * 0.5, atol=1e-5)


def test_bad_frames_are_named():
    tokenizer = FrameTokenizer.from_config("dc-f8c8")
    with pytest.raises(ValueError, match=r"frames must be uint8 \[B, T, H, W, 3\], got torch.float32"):
        tokenizer.encode(torch.zeros(1, 1, 32, 32, 3))
    with pytest.raises(ValueError, match="got torch.uint8 \\(32, 32, 3\\)"):
        tokenizer.encode(np.zeros((32, 32, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="frame size 30x32 must be divisible by the tokenizer's factor 8"):
        tokenizer.encode(np.zeros((1, 1, 32, 30, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"latents must be \[B, T, 8, h, w\]"):
        tokenizer.decode(torch.zeros(1, 1, 4, 4, 4))
    with pytest.raises(ValueError, match="unknown tokenizer config 'sd'"):
        FrameTokenizer.from_config("sd")


def test_bad_directories_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        FrameTokenizer.from_pretrained(tmp_path)
    FrameTokenizer.from_config("dc-f8c8").save_pretrained(tmp_path / "tok")
    (tmp_path / "tok" / TOKENIZER_FILE).write_text("{broken")
    with pytest.raises(ValueError, match=f"{TOKENIZER_FILE}: not a tokenizer description"):
        FrameTokenizer.from_pretrained(tmp_path / "tok")
    (tmp_path / "tok" / TOKENIZER_FILE).write_text(
        json.dumps({"autoencoder": "UNet2DModel", "shift": 0, "scale": 1})
    )
    with pytest.raises(ValueError, match="'UNet2DModel' is not a diffusers autoencoder class"):
        FrameTokenizer.from_pretrained(tmp_path / "tok")
    (tmp_path / "tok" / TOKENIZER_FILE).write_text(
        json.dumps({"autoencoder": "AutoencoderDC", "shift": [0, 1], "scale": 1})
    )
    with pytest.raises(ValueError, match="has 2 values for 8 latent channels"):
        FrameTokenizer.from_pretrained(tmp_path / "tok")
    (tmp_path / "tok" / TOKENIZER_FILE).unlink()
    (tmp_path / "tok" / "diffusion_pytorch_model.safetensors").rename(
        tmp_path / "tok" / "diffusion_pytorch_model.bin"
    )
    with pytest.raises(FileNotFoundError, match="no .safetensors weights"):
        FrameTokenizer.from_pretrained(tmp_path / "tok")


@torch.no_grad()
def test_fingerprint_follows_the_encoding_side_only():
    torch.manual_seed(0)
    tokenizer = FrameTokenizer.from_config("dc-f8c8")
    before = tokenizer.fingerprint()
    tokenizer.autoencoder.decoder.conv_in.weight.add_(1.0)  # latents unchanged: the same fingerprint
    assert tokenizer.fingerprint() == before
    tokenizer.scale.mul_(2.0)
    assert tokenizer.fingerprint() != before
    tokenizer.scale.div_(2.0)
    tokenizer.autoencoder.encoder.conv_out.weight.add_(1.0)
    assert tokenizer.fingerprint() != before
