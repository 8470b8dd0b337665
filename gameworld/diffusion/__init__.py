"""Flow-matching math and samplers for the next-frame model."""

from gameworld.diffusion.flow import (
    FlowMatchingConfig,
    add_noise,
    drop_actions,
    flow_matching_loss,
    sample_noise_levels,
    velocity_target,
)
from gameworld.diffusion.samplers import (
    SAMPLERS,
    commit_frames,
    integrate,
    rollout_latents,
    sample_frames,
    time_schedule,
)

__all__ = [
    "SAMPLERS",
    "FlowMatchingConfig",
    "add_noise",
    "commit_frames",
    "drop_actions",
    "flow_matching_loss",
    "integrate",
    "rollout_latents",
    "sample_frames",
    "sample_noise_levels",
    "time_schedule",
    "velocity_target",
]
