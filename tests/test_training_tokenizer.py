"""The tokenizer job: image losses with known answers, a short run that learns, calibration, export."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_smooth_episodes
from safetensors.torch import load_file

from gameworld.data import ClipDataset
from gameworld.metrics.image import mse, psnr, psnr_of_mse
from gameworld.models import FrameTokenizer
from training import train_tokenizer
from training.config import load_config
from training.distributed import DistEnv
from training.image_losses import PatchDiscriminator, gradient_loss, hinge_discriminator_loss, ssim

RECIPE = Path(__file__).resolve().parents[1] / "training" / "configs" / "tokenizer_smoke.yaml"
pytestmark = pytest.mark.usefixtures("torch_single_thread")


def test_ssim_is_one_for_equal_images_and_falls_with_noise():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 32, 48, generator=g) * 2 - 1
    assert ssim(image, image).item() == pytest.approx(1.0, abs=1e-5)
    slightly = (image + 0.05 * torch.randn(image.shape, generator=g)).clamp(-1, 1)
    very = (image + 0.5 * torch.randn(image.shape, generator=g)).clamp(-1, 1)
    assert 1.0 > ssim(image, slightly).item() > ssim(image, very).item()


def test_gradient_loss_sees_edges_not_offsets():
    image = torch.zeros(1, 3, 8, 8)
    image[..., 4:] = 1.0  # a vertical edge
    assert gradient_loss(image, image + 0.3).item() == pytest.approx(0.0, abs=1e-6)  # an offset has no edges
    assert gradient_loss(image, torch.zeros_like(image)).item() > 0


def test_patch_discriminator_and_hinge_loss():
    logits = PatchDiscriminator(channels=8)(torch.zeros(2, 3, 32, 64))
    assert logits.shape == (2, 1, 4, 8)  # one logit per patch
    assert hinge_discriminator_loss(torch.full((4,), 2.0), torch.full((4,), -2.0)).item() == 0.0
    assert hinge_discriminator_loss(torch.zeros(4), torch.zeros(4)).item() == 2.0


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokenizer_data")
    write_smooth_episodes(root / "train", 3, seed=0)
    write_smooth_episodes(root / "val", 1, seed=50)
    return root


def job(episodes, out, *extra):
    overrides = [f"data.episodes={episodes / 'train'}", f"validation.episodes={episodes / 'val'}",
                 f"train.out_dir={out}", *extra]
    return load_config(train_tokenizer.TokenizerJob, RECIPE, overrides)


def test_tokenizer_job_learns_calibrates_and_exports(episodes, tmp_path):
    out = tmp_path / "run"
    cfg = job(episodes, out, "train.max_steps=12", "train.checkpoint_every=12", "calibration_frames=16")
    directory = train_tokenizer.run(cfg, DistEnv())
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    loss = [line["train/loss"] for line in lines if "train/loss" in line]
    assert len(loss) == 12 and np.mean(loss[-3:]) < 0.8 * np.mean(loss[:3]), loss
    tokenizer = FrameTokenizer.from_pretrained(directory)  # the EMA weights the last validation scored
    validation = ClipDataset(cfg.validation.episodes, cfg.data.clip_len, seed=0)
    held_out = train_tokenizer.gather_frames(validation, cfg.validation.frames)
    errors = mse(tokenizer.decode(tokenizer.encode(held_out)), held_out)  # per frame
    assert lines[-1]["val/recon_psnr"] == pytest.approx(float(psnr_of_mse(errors.mean())), abs=1e-3)
    assert lines[-1]["val/recon_psnr"] > 8.0
    assert errors.std() > 0.01 * errors.mean()  # unequal errors: a mean of per-frame dB would read otherwise

    checkpoint = load_file(str(out / "checkpoints" / "step_000012" / "tensors.safetensors"))
    weights = load_file(str(directory / "diffusion_pytorch_model.safetensors"))
    assert all(torch.equal(v, checkpoint[f"ema/tokenizer.autoencoder.{k}"]) for k, v in weights.items())
    clips = ClipDataset(cfg.data.episodes, cfg.data.clip_len, seed=cfg.train.seed)
    latents = tokenizer.encode(train_tokenizer.gather_frames(clips, 16))  # the calibration frames
    assert latents.mean(dim=(0, 1, 3, 4)).abs().max() < 1e-3
    assert torch.allclose(latents.std(dim=(0, 1, 3, 4)), torch.ones(tokenizer.latent_channels), atol=1e-3)


def test_patch_gan_trains_its_discriminator_and_is_left_out_of_the_export(episodes, tmp_path):
    out = tmp_path / "gan"
    cfg = job(episodes, out, "train.max_steps=3", "loss.gan=0.1", "loss.gan_start=1", "loss.disc_channels=8",
              "validation.episodes=null")
    directory = train_tokenizer.run(cfg, DistEnv())
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(line["train/disc_loss"]) for line in lines)
    checkpoint = load_file(str(out / "checkpoints" / "step_000003" / "tensors.safetensors"))
    assert any(k.startswith("model/discriminator.") for k in checkpoint)
    exported = load_file(str(directory / "diffusion_pytorch_model.safetensors"))
    assert not any("discriminator" in k for k in exported)
    FrameTokenizer.from_pretrained(directory)


@pytest.fixture(scope="module")
def source_tokenizer(tmp_path_factory, episodes):
    """A saved dc-f8c8 tokenizer with calibrated (non-trivial) shift and scale."""
    torch.manual_seed(3)
    tokenizer = FrameTokenizer.from_config("dc-f8c8")
    clips = ClipDataset(episodes / "train", 4, seed=0)
    tokenizer.calibrate(train_tokenizer.gather_frames(clips, 8))
    path = tmp_path_factory.mktemp("source") / "tokenizer"
    tokenizer.save_pretrained(path)
    return path


WIDE_DECODER = "overrides.decoder_block_out_channels=[16,32,64,128]"


def test_decoder_only_run_keeps_the_latents_and_learns_a_new_decoder(episodes, source_tokenizer, tmp_path):
    out = tmp_path / "decoder"
    cfg = job(episodes, out, f"init_from={source_tokenizer}", "train_encoder=false", WIDE_DECODER,
              "train.max_steps=12", "validation.episodes=null")
    directory = train_tokenizer.run(cfg, DistEnv())
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    loss = [line["train/loss"] for line in lines if "train/loss" in line]
    assert len(loss) == 12 and np.mean(loss[-3:]) < 0.8 * np.mean(loss[:3]), loss

    source = FrameTokenizer.from_pretrained(source_tokenizer)
    tuned = FrameTokenizer.from_pretrained(directory)
    assert tuned.autoencoder.config.decoder_block_out_channels == [16, 32, 64, 128]
    assert tuned.fingerprint() == source.fingerprint()
    frames = train_tokenizer.gather_frames(ClipDataset(episodes / "val", 4, seed=0), 4)
    assert torch.equal(tuned.encode(frames), source.encode(frames))  # the same latents, bit for bit
    latents = source.encode(frames)
    assert psnr(tuned.decode(latents), frames).mean() > psnr(source.decode(latents), frames).mean()


def test_initialise_from_copies_a_matching_decoder_and_refuses_another_encoder(source_tokenizer, tmp_path):
    source = FrameTokenizer.from_pretrained(source_tokenizer).state_dict()
    same = FrameTokenizer.from_config("dc-f8c8")
    assert train_tokenizer.initialise_from(same, str(source_tokenizer)) is True
    assert all(torch.equal(t, source[name]) for name, t in same.state_dict().items())

    wide = FrameTokenizer.from_config("dc-f8c8", decoder_block_out_channels=(16, 32, 64, 128))
    fresh = {name: t.clone() for name, t in wide.state_dict().items()}
    assert train_tokenizer.initialise_from(wide, str(source_tokenizer)) is False
    for name, tensor in wide.state_dict().items():
        assert torch.equal(tensor, fresh[name] if name.startswith("autoencoder.decoder.") else source[name])

    with pytest.raises(ValueError, match=f"{source_tokenizer}: its encoder differs"):
        train_tokenizer.initialise_from(FrameTokenizer.from_config("dc-f8c16"), str(source_tokenizer))


def test_decoder_only_needs_a_tokenizer_to_start_from(episodes, tmp_path):
    with pytest.raises(ValueError, match="train_encoder=false keeps the encoder of another tokenizer"):
        job(episodes, tmp_path, "train_encoder=false")
