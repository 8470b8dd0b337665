"""Keyboard and mouse -> `Action`, with Minecraft's default controls.

WASD move, space jumps, left shift sneaks, left ctrl sprints, the mouse looks around while the
pointer is grabbed (click the window to grab it, Esc frees it), left/right/middle click attack,
use and pick a block, 1-9 or the mouse wheel select the hotbar, Q drops, E opens the inventory,
F swaps hands.

Mouse motion is summed between frames so none is lost, and a key or button pressed and released
between two frames still shows up in the next action (for one frame).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pygame

from gameworld.actions import MAX_CAMERA_DEG_PER_FRAME, VPT_DEGREES_PER_MOUSE_UNIT, Action

HOTBAR_SLOTS = 9


def default_key_map() -> dict[int, str]:
    keys = {
        pygame.K_w: "forward", pygame.K_s: "back", pygame.K_a: "left", pygame.K_d: "right",
        pygame.K_SPACE: "jump", pygame.K_LSHIFT: "sneak", pygame.K_LCTRL: "sprint",
        pygame.K_q: "drop", pygame.K_e: "inventory", pygame.K_f: "swapHands",
    }
    keys.update({getattr(pygame, f"K_{n}"): f"hotbar.{n}" for n in range(1, 10)})
    return keys


def default_button_map() -> dict[int, str]:
    return {1: "attack", 2: "pickItem", 3: "use"}


@dataclass(frozen=True)
class InputConfig:
    sensitivity: float = 1.0  # multiplies VPT's 0.15 degrees per mouse unit
    degrees_per_unit: float = VPT_DEGREES_PER_MOUSE_UNIT
    key_map: dict[int, str] = field(default_factory=default_key_map)
    button_map: dict[int, str] = field(default_factory=default_button_map)

    def __post_init__(self) -> None:
        if not 0 < self.sensitivity <= 100:
            raise ValueError(f"InputConfig.sensitivity={self.sensitivity} must be in (0, 100]")


class InputMapper:
    """Feed it pygame events with `handle`; take one `Action` per frame with `action()`."""

    def __init__(self, config: InputConfig | None = None):
        self.config = config or InputConfig()
        self.grabbed = False
        self.held: set[str] = set()
        self.tapped: set[str] = set()  # pressed since the last action, even if released already
        self.mouse_dx = 0.0
        self.mouse_dy = 0.0
        self.slot = 1  # the hotbar slot the wheel moves from (the game starts on slot 1)

    def set_grab(self, grabbed: bool) -> None:
        """Grab (hide, confine and use relative motion of) the pointer, or free it."""
        self.grabbed = grabbed
        pygame.event.set_grab(grabbed)
        pygame.mouse.set_visible(not grabbed)
        if not grabbed:
            self.held.clear()
            self.mouse_dx = self.mouse_dy = 0.0

    def handle(self, event: pygame.event.Event) -> None:
        if event.type == pygame.KEYDOWN:
            if event.key == pygame.K_ESCAPE:
                self.set_grab(False)
            elif event.key in self.config.key_map:
                self._press(self.config.key_map[event.key])
        elif event.type == pygame.KEYUP and event.key in self.config.key_map:
            self.held.discard(self.config.key_map[event.key])
        elif event.type == pygame.MOUSEBUTTONDOWN:
            if not self.grabbed and event.button in (1, 2, 3):
                self.set_grab(True)  # this click only grabs the pointer
            elif event.button in self.config.button_map:
                self._press(self.config.button_map[event.button])
        elif event.type == pygame.MOUSEBUTTONUP and event.button in self.config.button_map:
            self.held.discard(self.config.button_map[event.button])
        elif event.type == pygame.MOUSEMOTION and self.grabbed:
            self.mouse_dx += event.rel[0]
            self.mouse_dy += event.rel[1]
        elif event.type == pygame.MOUSEWHEEL and self.grabbed and event.y:
            # As in Minecraft: scrolling down (y < 0) moves right along the hotbar, wrapping around.
            self.slot = (self.slot - 1 - (1 if event.y > 0 else -1)) % HOTBAR_SLOTS + 1
            self.tapped.add(f"hotbar.{self.slot}")
        elif event.type == pygame.WINDOWFOCUSLOST:
            self.set_grab(False)

    def _press(self, name: str) -> None:
        self.held.add(name)
        self.tapped.add(name)
        if name.startswith("hotbar."):
            self.slot = int(name.removeprefix("hotbar."))

    def action(self) -> Action:
        """The action for the next frame; consumes the mouse motion and taps gathered so far."""
        scale = self.config.degrees_per_unit * self.config.sensitivity
        limit = MAX_CAMERA_DEG_PER_FRAME
        dpitch = max(-limit, min(limit, self.mouse_dy * scale))  # mouse down looks down (VPT sign)
        dyaw = max(-limit, min(limit, self.mouse_dx * scale))
        keys = frozenset(self.held | self.tapped)
        self.tapped.clear()
        self.mouse_dx = self.mouse_dy = 0.0
        return Action(keys, (dpitch, dyaw))
