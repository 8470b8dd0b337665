"""A user's image encoder for the consistency metrics, and the TorchScript loading it shares with FVD.

The feature cosines of `eval.score` (consecutive frames, each frame to the first) read features of
our IDM's frame encoder unless the user gives an image encoder of their own (`--encoder`): a local
TorchScript file (say a CLIP or DINO image tower traced with `torch.jit.trace`) that maps float
images [N, 3, S, S] to features [N, D] (or [N, ...], flattened). Nothing is downloaded, and
TorchScript loading is not pickle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# Per-channel (mean, std) an encoder expects of images in [0, 1]; "none" passes them as they are.
NORMALISATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
}


def load_torchscript(path: str | Path, what: str, device: str | torch.device = "cpu") -> torch.nn.Module:
    """A TorchScript network from a local file, in eval mode; clear errors for a missing or bad file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no {what} TorchScript file")
    try:
        return torch.jit.load(str(path), map_location=device).eval()
    except RuntimeError as err:
        raise ValueError(f"{path}: not a TorchScript file ({str(err).splitlines()[0]})") from err


class ImageFeatures:
    """Per-frame features from a local image-encoder TorchScript file."""

    def __init__(
        self,
        path: str | Path,
        resolution: int = 224,
        normalise: str = "imagenet",
        device: str | torch.device = "cpu",
    ) -> None:
        if normalise not in NORMALISATIONS:
            raise ValueError(f"unknown normalisation {normalise!r}; choose from {sorted(NORMALISATIONS)}")
        if resolution < 1:
            raise ValueError(f"encoder resolution must be >= 1, got {resolution}")
        self.model = load_torchscript(path, "image encoder", device)
        self.path, self.resolution, self.device = Path(path), resolution, torch.device(device)
        mean, std = NORMALISATIONS[normalise]
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)

    @torch.no_grad()
    def __call__(self, frames, batch: int = 16) -> torch.Tensor:
        """uint8 frames [T, H, W, 3] -> features [T, D] (float32, on the CPU)."""
        frames = torch.as_tensor(np.asarray(frames))
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"image encoder input must be frames [T, H, W, 3], got {tuple(frames.shape)}")
        out = []
        for start in range(0, len(frames), batch):
            images = frames[start : start + batch].to(self.device).permute(0, 3, 1, 2).float() / 255.0
            size = (self.resolution, self.resolution)
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)  # [n, 3, S, S]
            features = self.model((images - self.mean) / self.std)
            if not torch.is_tensor(features) or features.ndim < 2 or len(features) != len(images):
                shape = tuple(features.shape) if torch.is_tensor(features) else type(features).__name__
                raise ValueError(f"{self.path}: expected features [{len(images)}, D] from the encoder, "
                                 f"got {shape}")
            out.append(features.flatten(1).float().cpu())
        return torch.cat(out)
