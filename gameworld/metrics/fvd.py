"""Frechet video distance (FVD): the Frechet distance between I3D features of two sets of clips.

Nothing is downloaded: the I3D network is a TorchScript file the user keeps locally (TorchScript
loading is not pickle). `I3DFeatures(path)` calls it on float clips `[B, 3, T, S, S]` in [-1, 1]
(`S` = `resolution`, 224 for the usual I3D) with any extra keyword arguments the file needs; for
the widely used `i3d_torchscript.pt` of StyleGAN-V that is `{"rescale": false, "resize": false,
"return_features": true}`. The network must return features `[B, D]`.

FVD compares distributions, so it is only meaningful over many clips (hundreds): the quick
protocol reports it with its clip count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg

from gameworld.metrics.encoder import load_torchscript


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature sets [N, D] and [M, D] (N, M >= 2)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two feature sets [N >= 2, D] of one width, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    if not np.isfinite(root).all():  # near-singular product: regularise, as the FID reference does
        offset = np.eye(len(cov_a)) * 1e-6
        root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    root = root.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root))


class I3DFeatures:
    """Clip features from a local I3D TorchScript file."""

    def __init__(self, path: str | Path, resolution: int = 224, call_kwargs: dict | None = None,
                 device: str | torch.device = "cpu") -> None:
        path = Path(path)
        self.model = load_torchscript(path, "I3D", device)
        self.path, self.resolution, self.device = path, resolution, torch.device(device)
        self.call_kwargs = dict(call_kwargs or {})

    @torch.no_grad()
    def __call__(self, clips, batch: int = 4) -> np.ndarray:
        """uint8 clips [N, T, H, W, 3] -> features [N, D] (frames resized to the I3D resolution)."""
        clips = torch.as_tensor(np.asarray(clips))
        if clips.ndim != 5 or clips.shape[-1] != 3:
            raise ValueError(f"I3D input must be clips [N, T, H, W, 3], got {tuple(clips.shape)}")
        out = []
        for start in range(0, len(clips), batch):
            part = clips[start : start + batch].to(self.device)
            n, t = part.shape[:2]
            images = part.flatten(0, 1).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # [n*T, 3, H, W]
            size = (self.resolution, self.resolution)
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
            videos = images.unflatten(0, (n, t)).permute(0, 2, 1, 3, 4)  # [n, 3, T, S, S]
            features = self.model(videos, **self.call_kwargs)
            if not torch.is_tensor(features) or features.ndim != 2 or len(features) != n:
                shape = tuple(features.shape) if torch.is_tensor(features) else type(features).__name__
                raise ValueError(f"{self.path}: expected features [{n}, D] from the I3D network, got {shape}")
            out.append(features.float().cpu())
        return torch.cat(out).numpy()


def fvd(features: I3DFeatures, generated, reference) -> float:
    """FVD between two sets of uint8 clips [N, T, H, W, 3]."""
    return frechet_distance(features(generated), features(reference))
