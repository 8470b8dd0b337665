"""The pygame client: input mapping and the play loop, for any `reset()/step(action)` environment."""

import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from gameworld.ui.input import InputConfig, InputMapper  # noqa: E402
from gameworld.ui.loop import GameLoop, LoopConfig, split_result  # noqa: E402

__all__ = ["GameLoop", "InputConfig", "InputMapper", "LoopConfig", "split_result"]
