"""Discriminator heads on a frozen teacher: real/fake logits per frame from its hidden states.

Consistency distillation (NFD, after sCM / LADD) adds an adversarial hinge loss whose critic is
the teacher itself: the teacher's transformer, frozen, reads a (re-noised) clip, and small
trainable heads on the token features of a few of its blocks score each frame. The teacher already
knows what frames of this world look like at every noise level, so the heads stay small.

    critic = TeacherDiscriminator(hidden_size=teacher.config.hidden_size, layers=[1, 3], depth=6)
    features = critic.features(teacher, latents, levels, actions)   # one teacher forward
    logits = critic.logits(features)                                 # [B, T]
    logits = critic.logits(features, frozen_heads=True)              # same numbers, no head gradients

The teacher is passed in, not owned: whoever holds it decides where it lives and keeps it frozen.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from torch.func import functional_call

from gameworld.models.dit import NextFrameDiT


class TeacherDiscriminator(nn.Module):
    """One head per chosen teacher block: LayerNorm -> MLP -> a logit per token, averaged per frame."""

    def __init__(self, hidden_size: int, layers: Sequence[int], depth: int) -> None:
        super().__init__()
        chosen = sorted({layer % depth for layer in layers}) if layers else []
        if not chosen or any(not -depth <= layer < depth for layer in layers):
            raise ValueError(f"discriminator layers must be block indices in [-{depth}, {depth}), "
                             f"got {layers}")
        self.layers = chosen
        self.heads = nn.ModuleList(
            nn.Sequential(
                nn.LayerNorm(hidden_size), nn.Linear(hidden_size, hidden_size), nn.SiLU(),
                nn.Linear(hidden_size, 1),
            )
            for _ in chosen
        )

    def features(
        self, teacher: NextFrameDiT, latents: torch.Tensor, levels: torch.Tensor, actions: torch.Tensor
    ) -> list[torch.Tensor]:
        """Token features [B, T, L, D] of the chosen teacher blocks for latents [B, T, C, h, w]."""
        captured: dict[int, torch.Tensor] = {}
        hooks = [
            teacher.blocks[layer].register_forward_hook(
                lambda module, args, output, layer=layer: captured.__setitem__(layer, output)
            )
            for layer in self.layers
        ]
        try:
            teacher(latents, levels, actions)
        finally:
            for hook in hooks:
                hook.remove()
        return [captured[layer] for layer in self.layers]

    def logits(self, features: list[torch.Tensor], frozen_heads: bool = False) -> torch.Tensor:
        """[B, T] real/fake logit per frame; `frozen_heads` keeps gradients out of the heads (for
        the generator's term) while still passing them to the features."""
        total = 0
        for head, feature in zip(self.heads, features, strict=True):
            if frozen_heads:
                params = {name: p.detach() for name, p in head.named_parameters()}
                scores = functional_call(head, params, (feature,))
            else:
                scores = head(feature)
            total = total + scores.squeeze(-1).float().mean(-1)  # [B, T, L] -> [B, T]
        return total
