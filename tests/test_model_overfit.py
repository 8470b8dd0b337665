"""A tiny NextFrameDiT learns a handful of voxel-game clips on CPU: the flow-matching loss falls 10x."""

import numpy as np
import torch

from gameworld.actions import Action, ActionSpace
from gameworld.diffusion import FlowMatchingConfig, flow_matching_loss
from gameworld.models import FrameTokenizer, NextFrameDiT
from gameworld.voxel import VoxelWorld

SCRIPTS = [
    Action.of("forward", camera=(0, 6)),
    Action.of("forward", camera=(0, -6)),
    Action.of("back", camera=(3, 0)),
    Action.of("left", "jump"),
]


def voxel_clips(frames: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 [4, T, 32, 64, 3] clips, one scripted action each, and the encoded actions [4, T, A]."""
    space = ActionSpace.minecraft()
    clips, actions = [], []
    for seed, action in enumerate(SCRIPTS):
        world = VoxelWorld(seed=seed, biome="plains", width=64, height=32)
        clips.append(np.stack([world.reset()] + [world.step(action)[0] for _ in range(frames - 1)]))
        actions.append(space.encode([action] * frames))  # the clip's action on every frame names the clip
    return torch.from_numpy(np.stack(clips)), torch.stack(actions)


def test_tiny_model_overfits_a_handful_of_voxel_clips():
    torch.manual_seed(0)
    frames, actions = voxel_clips()
    assert frames.float().std() > 10  # real pictures, not a blank screen
    tokenizer = FrameTokenizer.from_config("dc-f8c8").eval()  # untrained, but calibrated to unit variance
    tokenizer.calibrate(frames)
    latents = tokenizer.encode(frames)  # [4, 6, 8, 4, 8]
    model = NextFrameDiT(
        in_channels=8,
        latent_height=4,
        latent_width=8,
        action_dim=actions.shape[-1],
        patch_size=2,
        hidden_size=64,
        depth=2,
        num_heads=4,
        max_frames=8,
    )
    cfg = FlowMatchingConfig(action_dropout=0.0)

    def held_out_loss() -> float:  # the same 8 noise draws before and after training
        with torch.no_grad():
            losses = [
                flow_matching_loss(model, latents, actions, cfg, torch.Generator().manual_seed(k))
                for k in range(8)
            ]
        return float(torch.stack(losses).mean())

    before = held_out_loss()
    steps = 600
    optimizer = torch.optim.AdamW(model.parameters(), lr=6e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=6e-3, total_steps=steps, pct_start=0.1)
    generator = torch.Generator().manual_seed(1)
    batch_latents, batch_actions = latents.repeat(2, 1, 1, 1, 1), actions.repeat(2, 1, 1)
    model.train()
    for _ in range(steps):
        loss = flow_matching_loss(model, batch_latents, batch_actions, cfg, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    after = held_out_loss()
    assert before > 1.5  # a zero-initialised output starts at E|eps - x0|^2 = 2
    assert after < before / 10, f"loss fell only from {before:.3f} to {after:.3f}"
