"""Frame metrics that need no model: PSNR, SSIM, sharpness, mean colour, feature cosine.

All take uint8 frames `[..., H, W, 3]` (NumPy arrays or tensors) and return one value per frame
(NumPy, the leading shape `[...]`). They are what `eval.score` reports against the ground truth
(PSNR, SSIM) and over long rollouts (mean colour and sharpness show a collapse to grey, black or
noise; cosine of features shows flicker and drift).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

MAX_PSNR = 100.0  # identical frames: reported as 100 dB rather than infinity
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5  # Wang et al. 2004
SSIM_C1, SSIM_C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def _frames(frames, name: str = "frames") -> torch.Tensor:
    """uint8-valued frames [..., H, W, 3] -> float64 [N, 3, H, W] (0..255) and the leading shape."""
    x = frames if torch.is_tensor(frames) else torch.from_numpy(np.ascontiguousarray(frames))
    if x.ndim < 3 or x.shape[-1] != 3:
        raise ValueError(f"{name} must be frames [..., H, W, 3], got {tuple(x.shape)}")
    return x.detach().cpu().double().reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2)


def _pair(prediction, target) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    a, b = _frames(prediction, "prediction"), _frames(target, "target")
    if np.shape(prediction) != np.shape(target):
        raise ValueError(f"frames of different shapes: {tuple(np.shape(prediction))} and "
                         f"{tuple(np.shape(target))}")
    return a, b, tuple(np.shape(target)[:-3])


def mse(prediction, target) -> np.ndarray:
    """Mean squared error per frame, on 0..255 values."""
    a, b, lead = _pair(prediction, target)
    return (a - b).pow(2).flatten(1).mean(1).numpy().reshape(lead)


def psnr_of_mse(errors) -> np.ndarray:
    """Mean squared errors (0..255 values) -> PSNR in dB (an error of 0: `MAX_PSNR`)."""
    errors = np.asarray(errors, dtype=np.float64)
    return np.minimum(10 * np.log10(255.0**2 / np.maximum(errors, 1e-12)), MAX_PSNR)


def psnr(prediction, target) -> np.ndarray:
    """PSNR in dB per frame (identical frames: `MAX_PSNR`)."""
    return psnr_of_mse(mse(prediction, target))


def _gaussian_window() -> torch.Tensor:
    x = torch.arange(SSIM_WINDOW, dtype=torch.float64) - SSIM_WINDOW // 2
    g = torch.exp(-(x**2) / (2 * SSIM_SIGMA**2))
    return g / g.sum()


def ssim(prediction, target) -> np.ndarray:
    """Structural similarity per frame: Gaussian 11x11 window, sigma 1.5, mean over pixels and
    colour channels, on 0..255 values (1 for identical frames)."""
    a, b, lead = _pair(prediction, target)
    g = _gaussian_window()
    channels = a.shape[1]
    kernel_h = g.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    kernel_w = g.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)

    def blur(x: torch.Tensor) -> torch.Tensor:  # "valid" Gaussian filtering per channel
        return F.conv2d(F.conv2d(x, kernel_h, groups=channels), kernel_w, groups=channels)

    if min(a.shape[-2:]) < SSIM_WINDOW:
        size = tuple(a.shape[-2:])
        raise ValueError(f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {size}")
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    numerator = (2 * mu_a * mu_b + SSIM_C1) * (2 * cov + SSIM_C2)
    denominator = (mu_a**2 + mu_b**2 + SSIM_C1) * (var_a + var_b + SSIM_C2)
    return (numerator / denominator).flatten(1).mean(1).numpy().reshape(lead)


def grey(images: torch.Tensor) -> torch.Tensor:
    """Luma (ITU-R BT.601 weights) of images [N, 3, H, W] -> [N, 1, H, W], in their own scale."""
    return (0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2])[:, None]


def sharpness(frames) -> np.ndarray:
    """Variance of the Laplacian of the grey image per frame (0 for a flat frame; blur lowers it)."""
    grey_images = grey(_frames(frames))  # [N, 1, H, W]
    laplace = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=torch.float64).view(1, 1, 3, 3)
    return F.conv2d(grey_images, laplace).flatten(1).var(1).numpy().reshape(np.shape(frames)[:-3])


def mean_colour(frames) -> np.ndarray:
    """Mean R, G, B per frame: [..., 3]."""
    x = _frames(frames)
    return x.mean((2, 3)).numpy().reshape(*np.shape(frames)[:-3], 3)


def feature_cosine(features: torch.Tensor | np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame features [T, D] -> cosine similarity of consecutive frames [T-1] and of each
    frame to the first [T] (flicker and drift)."""
    f = torch.as_tensor(np.asarray(features) if not torch.is_tensor(features) else features).double()
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"feature_cosine needs features [T >= 2, D], got {tuple(f.shape)}")
    f = F.normalize(f, dim=1)
    return {"consecutive": (f[1:] * f[:-1]).sum(1).numpy(), "to_first": (f * f[:1]).sum(1).numpy()}
