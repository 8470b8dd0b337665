"""The front ends: the pygame client (input mapping, play loop) and the Gradio web demo, both
playing a `FrameSource` (the voxel game, a world model through `WorldEngine`, or both side by side)."""

import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from gameworld.ui.hud import FrameTimer, describe_action, hud_lines  # noqa: E402
from gameworld.ui.input import InputConfig, InputMapper  # noqa: E402
from gameworld.ui.loop import GameLoop, LoopConfig, split_result  # noqa: E402
from gameworld.ui.recorder import SessionRecorder  # noqa: E402
from gameworld.ui.sources import (  # noqa: E402
    EngineSource,
    FrameSource,
    SideBySide,
    SourceChoice,
    StartScene,
    VoxelSource,
    default_model_available,
    open_source,
    source_factory,
)

__all__ = [
    "EngineSource",
    "FrameSource",
    "FrameTimer",
    "GameLoop",
    "InputConfig",
    "InputMapper",
    "LoopConfig",
    "SessionRecorder",
    "SideBySide",
    "SourceChoice",
    "StartScene",
    "VoxelSource",
    "default_model_available",
    "describe_action",
    "hud_lines",
    "open_source",
    "source_factory",
    "split_result",
]
