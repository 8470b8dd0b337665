"""3D rotary position embedding over (time, height, width), computed in fp32.

The head dimension is split in three parts (time gets about a quarter, height and width share the
rest); each part rotates adjacent pairs `(x[2j], x[2j + 1])`, taken as one complex number, by the
angle `position * theta ** (-2k / part)` (a complex multiply: one pass over the tensor). Time
positions come per frame from the attention plan (relative to the window, see `attention.py`);
height and width positions are the token's patch row and column.
"""

from __future__ import annotations

import torch


def split_head_dim(head_dim: int) -> tuple[int, int, int]:
    """(time, height, width) sizes of the head dimension, each even, summing to `head_dim`."""
    if head_dim % 2 or head_dim < 6:
        raise ValueError(f"3D RoPE needs an even head dimension >= 6, got {head_dim}")
    time = max(2, (head_dim // 4) // 2 * 2)
    height = (head_dim - time) // 4 * 2
    return time, height, head_dim - time - height


def _inverse_frequencies(size: int, theta: float, device: torch.device) -> torch.Tensor:
    return theta ** (-torch.arange(0, size, 2, device=device, dtype=torch.float32) / size)  # [size / 2]


def rope_rotations(
    frame_positions: torch.Tensor, grid_height: int, grid_width: int, head_dim: int, theta: float
) -> torch.Tensor:
    """Unit complex rotations [F * L, Dh / 2] for F frames at `frame_positions` [F], L = grid_h * grid_w."""
    device = frame_positions.device
    time_dim, height_dim, width_dim = split_head_dim(head_dim)
    time = frame_positions.float()[:, None] * _inverse_frequencies(time_dim, theta, device)  # [F, t/2]
    rows = torch.arange(grid_height, device=device, dtype=torch.float32)
    cols = torch.arange(grid_width, device=device, dtype=torch.float32)
    row_angles = rows[:, None] * _inverse_frequencies(height_dim, theta, device)  # [gh, h/2]
    col_angles = cols[:, None] * _inverse_frequencies(width_dim, theta, device)  # [gw, w/2]
    spatial = torch.cat(
        [
            row_angles[:, None].expand(grid_height, grid_width, -1),
            col_angles[None, :].expand(grid_height, grid_width, -1),
        ],
        dim=-1,
    ).reshape(grid_height * grid_width, -1)  # [L, (h + w) / 2]
    num_frames, tokens = time.shape[0], spatial.shape[0]
    angles = torch.cat(
        [time[:, None].expand(-1, tokens, -1), spatial[None].expand(num_frames, -1, -1)], dim=-1
    ).reshape(num_frames * tokens, head_dim // 2)  # [F * L, Dh / 2]
    return torch.polar(torch.ones_like(angles), angles)


def apply_rope(x: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """Rotate x [B, H, N, Dh] by complex rotations [N, Dh / 2] (in fp32, returned in x's dtype)."""
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))  # [B, H, N, Dh / 2]
    return torch.view_as_real(pairs * rotations).flatten(-2).to(x.dtype)
