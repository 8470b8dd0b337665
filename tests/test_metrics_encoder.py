"""A user's image encoder (TorchScript) for the feature cosines: known answers, plumbing, bad files."""

import numpy as np
import pytest
import torch

from gameworld.metrics.encoder import NORMALISATIONS, ImageFeatures
from gameworld.metrics.image import feature_cosine


class MeanColour(torch.nn.Module):
    """Stands in for an image tower: the mean of each channel, [N, 3, S, S] -> [N, 3]."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(2, 3))


class Flat(torch.nn.Module):
    """Returns one number per batch: the wrong shape."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(0, 1, 2, 3)).reshape(1)


def save(module: torch.nn.Module, path) -> str:
    torch.jit.script(module).save(str(path))
    return str(path)


def test_features_of_plain_colours_are_the_normalised_colours(tmp_path):
    path = save(MeanColour(), tmp_path / "enc.pt")
    colours = np.array([[255, 0, 0], [0, 128, 255], [51, 102, 153]], dtype=np.uint8)
    frames = np.broadcast_to(colours[:, None, None, :], (3, 36, 64, 3)).copy()  # [T, H, W, 3]
    plain = ImageFeatures(path, resolution=16, normalise="none")(frames)
    assert plain.shape == (3, 3) and torch.allclose(plain, torch.tensor(colours / 255.0).float(), atol=1e-6)
    mean, std = (torch.tensor(v) for v in NORMALISATIONS["imagenet"])
    imagenet = ImageFeatures(path, resolution=16)(frames)  # ImageNet statistics by default
    assert torch.allclose(imagenet, (plain - mean) / std, atol=1e-5)
    cosine = feature_cosine(ImageFeatures(path, resolution=8, normalise="none")(frames[[0, 0, 1]]))
    assert cosine["consecutive"].tolist() == pytest.approx([1.0, 0.0], abs=1e-6)  # red, red, no red


def test_bad_encoders_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt: no image encoder TorchScript file"):
        ImageFeatures(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.pt: not a TorchScript file"):
        ImageFeatures(tmp_path / "junk.pt")
    good = save(MeanColour(), tmp_path / "enc.pt")
    with pytest.raises(ValueError, match="unknown normalisation 'sepia'"):
        ImageFeatures(good, normalise="sepia")
    with pytest.raises(ValueError, match=r"frames \[T, H, W, 3\]"):
        ImageFeatures(good)(np.zeros((4, 8, 8), dtype=np.uint8))
    flat = ImageFeatures(save(Flat(), tmp_path / "flat.pt"), resolution=8)
    with pytest.raises(ValueError, match=r"flat.pt: expected features \[2, D\] from the encoder, got \(1,\)"):
        flat(np.zeros((2, 8, 8, 3), dtype=np.uint8))
