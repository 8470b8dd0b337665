"""Reconstruction losses of the tokenizer: L1, SSIM, image gradients, and an optional patch GAN.

Images are [N, 3, H, W] in [-1, 1]. The discriminator is a small PatchGAN (a grid of real/fake
logits, one per overlapping patch) trained with the hinge loss.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _gaussian_window(size: int, sigma: float, channels: int, like: torch.Tensor) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32, device=like.device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).to(like.dtype)  # [C, 1, k, k]


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean structural similarity of images [N, C, H, W] in [-1, 1] (Gaussian window, as Wang et al.)."""
    a, b = (a + 1) / 2, (b + 1) / 2  # to [0, 1]
    channels = a.shape[1]
    kernel = _gaussian_window(min(window, a.shape[-1], a.shape[-2]), sigma, channels, a)
    blur = lambda x: F.conv2d(x, kernel, groups=channels)  # noqa: E731 (valid: no padding artefacts)
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    score = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return score.mean()


def gradient_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal and vertical pixel differences: keeps edges (block outlines) sharp."""
    dx = lambda x: x[..., :, 1:] - x[..., :, :-1]  # noqa: E731
    dy = lambda x: x[..., 1:, :] - x[..., :-1, :]  # noqa: E731
    return (dx(a) - dx(b)).abs().mean() + (dy(a) - dy(b)).abs().mean()


class PatchDiscriminator(nn.Module):
    """Strided convolutions to a [N, 1, H/8, W/8] grid of real/fake logits."""

    def __init__(self, channels: int = 32, layers: int = 3) -> None:
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv2d(3, channels, 4, 2, 1), nn.LeakyReLU(0.2)]
        width = channels
        for _ in range(layers - 1):
            blocks += [nn.Conv2d(width, width * 2, 4, 2, 1), nn.GroupNorm(8, width * 2), nn.LeakyReLU(0.2)]
            width *= 2
        blocks.append(nn.Conv2d(width, 1, 3, 1, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
