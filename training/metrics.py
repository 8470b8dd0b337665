"""Image figures the training jobs report (evaluation has its own, fuller set in `eval/`)."""

from __future__ import annotations

import numpy as np
import torch

MAX_PSNR = 100.0  # identical images: reported as 100 dB rather than infinity


def psnr(prediction, target) -> np.ndarray:
    """PSNR in dB per image of uint8 images [..., H, W, 3] (arrays or tensors): shape [...]."""
    a = torch.as_tensor(np.asarray(prediction) if not torch.is_tensor(prediction) else prediction)
    b = torch.as_tensor(np.asarray(target) if not torch.is_tensor(target) else target)
    if a.shape != b.shape:
        raise ValueError(f"psnr needs images of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    mse = (a.double() - b.double()).pow(2).flatten(-3).mean(-1)
    values = 10 * torch.log10(255.0**2 / mse.clamp_min(1e-12))
    return values.clamp(max=MAX_PSNR).numpy()
