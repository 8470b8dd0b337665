"""Image figures the training jobs report (evaluation has its own, fuller set)."""

from __future__ import annotations

import numpy as np
import torch

MAX_PSNR = 100.0  # identical images: reported as 100 dB rather than infinity


def _as_array(images) -> np.ndarray:
    return images.detach().cpu().numpy() if torch.is_tensor(images) else np.asarray(images)


def psnr(prediction, target) -> np.ndarray:
    """PSNR in dB per image of uint8 images [..., H, W, 3] (arrays or tensors): shape [...]."""
    a, b = _as_array(prediction).astype(np.float64), _as_array(target).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"psnr needs images of one shape, got {a.shape} and {b.shape}")
    mse = ((a - b) ** 2).reshape(*a.shape[:-3], -1).mean(-1)
    return np.minimum(10 * np.log10(255.0**2 / np.maximum(mse, 1e-12)), MAX_PSNR)
