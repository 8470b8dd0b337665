"""LPIPS (Zhang et al. 2018) in plain PyTorch, from weights the user keeps locally.

Nothing is downloaded: `LPIPS.from_file(path, net="vgg" | "alex")` reads one safetensors file
holding the backbone in torchvision's key layout (`features.<i>.weight/bias`) and the LPIPS linear
layers in the official layout (`lin<k>.model.1.weight`, shape [1, C, 1, 1]). Convert once with
the official packages on a machine that has them, e.g.

    state = {**torchvision.models.vgg16(weights="DEFAULT").state_dict(), **lpips_linear_state_dict}
    safetensors.torch.save_file({k: v for k, v in state.items() if k.startswith(("features.", "lin"))}, path)

Distance: the frames (scaled to [-1, 1], then LPIPS's shift and scale) go through the backbone;
at each tapped ReLU the channel vectors are unit-normalised, the squared difference is weighted
per channel by `lin<k>` and averaged over the image; the five layers are summed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

# torchvision `features` layouts: ("C", in, out, kernel, stride, padding) | ("R",) | ("M", kernel, stride)
_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
NETS: dict[str, dict] = {
    "vgg": {"taps": (3, 8, 15, 22, 29), "channels": (64, 128, 256, 512, 512)},
    "alex": {"taps": (1, 4, 7, 9, 11), "channels": (64, 192, 384, 256, 256)},
}
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


def _vgg16_features() -> nn.Sequential:
    layers, cin = [], 3
    for item in _VGG16:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, item, 3, padding=1), nn.ReLU()]
            cin = item
    return nn.Sequential(*layers)


def _alexnet_features() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
    )


class LPIPS(nn.Module):
    """Learned perceptual distance between frames (0 for identical frames; larger is further)."""

    def __init__(self, net: str = "vgg") -> None:
        super().__init__()
        if net not in NETS:
            raise ValueError(f"unknown LPIPS backbone {net!r}; choose from {sorted(NETS)}")
        self.net = net
        self.features = _vgg16_features() if net == "vgg" else _alexnet_features()
        self.taps = NETS[net]["taps"]
        for k, channels in enumerate(NETS[net]["channels"]):
            linear = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))
            self.add_module(f"lin{k}", linear)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.eval()

    @classmethod
    def from_file(cls, path: str | Path, net: str = "vgg") -> LPIPS:
        """Backbone + linear layers from one safetensors file (see the module docstring)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no LPIPS weights file")
        try:
            state = load_file(path)
        except Exception as err:  # safetensors raises its own error types
            raise ValueError(f"{path}: not a safetensors file ({err})") from err
        model = cls(net)
        expected = set(model.state_dict())
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing:
            raise ValueError(f"{path}: LPIPS-{net} weights lack {len(missing)} key(s) such as {missing[:4]} "
                             f"(keys it has but should not: {unexpected[:4]})")
        try:
            model.load_state_dict({k: state[k] for k in expected})
        except RuntimeError as err:
            raise ValueError(f"{path}: LPIPS-{net} weights do not fit: {err}") from err
        return model

    def _layers(self, images: torch.Tensor) -> list[torch.Tensor]:
        x, out = (images - self.shift) / self.scale, []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                out.append(x)
            if index == self.taps[-1]:
                break
        return out

    @torch.no_grad()
    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Images [N, 3, H, W] in [-1, 1] -> distance per image [N]."""
        total = torch.zeros(len(prediction), device=prediction.device)
        for k, (a, b) in enumerate(zip(self._layers(prediction), self._layers(target), strict=True)):
            a, b = F.normalize(a, dim=1, eps=1e-10), F.normalize(b, dim=1, eps=1e-10)
            total = total + getattr(self, f"lin{k}")((a - b) ** 2).mean((1, 2, 3))
        return total

    def frames(self, prediction, target, batch: int = 16) -> np.ndarray:
        """uint8 frames [..., H, W, 3] -> distance per frame [...]."""
        lead = np.shape(target)[:-3]
        if np.shape(prediction) != np.shape(target):
            raise ValueError(f"frames of different shapes: {np.shape(prediction)} and {np.shape(target)}")
        device = self.shift.device
        convert = lambda f: (torch.as_tensor(np.asarray(f)).reshape(-1, *np.shape(f)[-3:])  # noqa: E731
                             .permute(0, 3, 1, 2).float().to(device) / 127.5 - 1.0)
        a, b = convert(prediction), convert(target)
        values = [self(a[i : i + batch], b[i : i + batch]).cpu() for i in range(0, len(a), batch)]
        return torch.cat(values).numpy().reshape(lead)
