"""LPIPS and FVD plumbing with small random-weight networks; Frechet distance on known Gaussians."""

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from gameworld.metrics.fvd import I3DFeatures, frechet_distance, fvd
from gameworld.metrics.lpips import LPIPS


@pytest.fixture
def lpips_file(tmp_path):
    torch.manual_seed(0)
    model = LPIPS("alex")
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.startswith("lin"):
                param.uniform_(0.1, 1.0)  # LPIPS's linear weights are non-negative
    path = tmp_path / "lpips_alex.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
    return path


def test_lpips_from_file_is_zero_on_identical_frames_and_grows_with_change(lpips_file, make_frames):
    model = LPIPS.from_file(lpips_file, net="alex")
    frames = make_frames(3, height=64, width=64)
    noise = np.random.default_rng(0).integers(0, 256, frames.shape, dtype=np.uint8)
    same, near, far = (
        model.frames(frames, frames),
        model.frames(frames[1:], frames[:-1]),
        model.frames(noise, frames),
    )
    assert np.allclose(same, 0.0, atol=1e-6)
    assert np.all(near > 0) and far.mean() > near.mean()
    assert np.allclose(model.frames(frames, noise), far, rtol=1e-5)  # symmetric


def test_lpips_weights_errors_name_the_file(tmp_path, lpips_file):
    with pytest.raises(FileNotFoundError, match="no LPIPS weights"):
        LPIPS.from_file(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="lpips_alex.safetensors: LPIPS-vgg weights lack"):
        LPIPS.from_file(lpips_file, net="vgg")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="bad.safetensors: not a safetensors file"):
        LPIPS.from_file(bad, net="alex")


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([3.0, 0.0, 4.0])
    assert frechet_distance(a, a + shift) == pytest.approx(25.0, rel=1e-6)  # same covariance: |d|^2
    assert frechet_distance(a, 2 * a) == pytest.approx(np.trace(np.cov(a, rowvar=False)), rel=1e-3)
    with pytest.raises(ValueError, match="two feature sets"):
        frechet_distance(a[:1], a)


class TinyI3D(torch.nn.Module):
    """Stands in for I3D: pools a video [B, 3, T, S, S] into 6 features."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(3, 6)

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        return self.proj(videos.mean(dim=(2, 3, 4)))


def test_i3d_torchscript_plumbing_and_fvd(tmp_path, make_frames):
    path = tmp_path / "i3d.pt"
    torch.jit.script(TinyI3D()).save(str(path))
    features = I3DFeatures(path, resolution=16)
    clips = np.stack([make_frames(4, seed=s) for s in range(5)])  # [5, 4, 36, 64, 3]
    assert features(clips).shape == (5, 6)
    assert fvd(features, clips, clips) == pytest.approx(0.0, abs=1e-4)
    assert fvd(features, np.clip(clips.astype(int) + 60, 0, 255).astype(np.uint8), clips) > 1e-3
    not_script = tmp_path / "plain.pt"
    not_script.write_bytes(b"junk")
    with pytest.raises(ValueError, match="plain.pt: not a TorchScript file"):
        I3DFeatures(not_script)
