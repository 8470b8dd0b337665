"""Keyboard and mouse events -> Actions (headless pygame, real events through the event queue)."""

from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame  # noqa: E402
import pytest  # noqa: E402

from gameworld.actions import Action  # noqa: E402
from gameworld.ui import InputConfig, InputMapper  # noqa: E402


@pytest.fixture
def display():
    pygame.display.init()
    pygame.display.set_mode((16, 16))
    pygame.event.clear()
    yield
    pygame.display.quit()


def send(mapper: InputMapper, *events: pygame.event.Event) -> None:
    """Post real events, then drain the queue into the mapper, as the game loop does."""
    for event in events:
        pygame.event.post(event)
    for event in pygame.event.get():
        mapper.handle(event)


def key(k: int, down: bool = True) -> pygame.event.Event:
    return pygame.event.Event(pygame.KEYDOWN if down else pygame.KEYUP, key=k, mod=0)


def click(button: int, down: bool = True) -> pygame.event.Event:
    kind = pygame.MOUSEBUTTONDOWN if down else pygame.MOUSEBUTTONUP
    return pygame.event.Event(kind, button=button, pos=(8, 8))


def motion(dx: int, dy: int) -> pygame.event.Event:
    return pygame.event.Event(pygame.MOUSEMOTION, rel=(dx, dy), pos=(8, 8), buttons=(0, 0, 0))


def grabbed(config: InputConfig | None = None) -> InputMapper:
    mapper = InputMapper(config)
    send(mapper, click(1))
    assert mapper.grabbed and mapper.action().keys == frozenset()  # the grabbing click is not an attack
    return mapper


def test_movement_keys_are_held_until_released(display):
    mapper = grabbed()
    keys = (pygame.K_w, pygame.K_a, pygame.K_SPACE, pygame.K_LSHIFT, pygame.K_LCTRL)
    send(mapper, *(key(k) for k in keys))
    expected = {"forward", "left", "jump", "sneak", "sprint"}
    assert mapper.action().keys == expected and mapper.action().keys == expected
    send(mapper, key(pygame.K_w, down=False), key(pygame.K_s), key(pygame.K_d))
    assert mapper.action().keys == {"left", "jump", "sneak", "sprint", "back", "right"}


def test_a_tap_between_two_frames_is_not_lost(display):
    mapper = grabbed()
    send(mapper, key(pygame.K_3), key(pygame.K_3, down=False), click(1), click(1, down=False))
    assert mapper.action().keys == {"hotbar.3", "attack"}
    assert mapper.action().keys == frozenset()


def test_mouse_motion_is_summed_between_frames_in_vpt_degrees(display):
    mapper = grabbed()
    send(mapper, motion(10, 4), motion(6, -2))
    assert mapper.action().camera == pytest.approx((2 * 0.15, 16 * 0.15))
    assert mapper.action().camera == (0.0, 0.0)  # consumed
    fast = grabbed(InputConfig(sensitivity=2.0))
    send(fast, motion(-10, 0))
    assert fast.action().camera == pytest.approx((0.0, -3.0))
    send(fast, motion(5000, 0))
    assert fast.action().camera == (0.0, 180.0)  # clipped to the largest turn an Action may carry


def test_motion_counts_only_while_the_pointer_is_grabbed_and_esc_frees_it(display):
    mapper = InputMapper()
    send(mapper, motion(50, 50), key(pygame.K_w))
    action = mapper.action()
    assert action.camera == (0.0, 0.0) and not mapper.grabbed
    mapper = grabbed()
    send(mapper, key(pygame.K_w), motion(20, 0), key(pygame.K_ESCAPE), motion(30, 0))
    assert not mapper.grabbed
    assert mapper.action().keys == {"forward"}  # the tap before Esc still counts once
    assert mapper.action() == Action.null()


def test_buttons_hotbar_and_focus_loss(display):
    mapper = grabbed()
    send(mapper, click(3), click(2))
    assert mapper.action().keys == {"use", "pickItem"}
    digits = [key(getattr(pygame, f"K_{n}")) for n in range(1, 10)]
    send(mapper, click(3, down=False), click(2, down=False), *digits)
    assert mapper.action().keys == {f"hotbar.{n}" for n in range(1, 10)}
    send(mapper, pygame.event.Event(pygame.WINDOWFOCUSLOST))
    assert not mapper.grabbed and mapper.action().keys == frozenset()


def test_bad_sensitivity_is_refused():
    with pytest.raises(ValueError, match="sensitivity"):
        InputConfig(sensitivity=0)


def wheel(y: int) -> pygame.event.Event:
    return pygame.event.Event(pygame.MOUSEWHEEL, x=0, y=y, flipped=False, precise_x=0.0, precise_y=float(y))


def test_the_wheel_walks_the_hotbar_from_the_selected_slot_and_wraps(display):
    mapper = grabbed()
    send(mapper, wheel(-1))  # scrolling down moves right, as in Minecraft
    assert mapper.action().keys == {"hotbar.2"}
    send(mapper, key(pygame.K_8), key(pygame.K_8, down=False))
    assert mapper.action().keys == {"hotbar.8"}
    send(mapper, wheel(-1))
    assert mapper.action().keys == {"hotbar.9"}
    send(mapper, wheel(-1))
    assert mapper.action().keys == {"hotbar.1"}  # wraps around
    send(mapper, wheel(1))
    assert mapper.action().keys == {"hotbar.9"}
    assert mapper.action().keys == frozenset()  # a wheel step is a tap, not a held key


def test_the_wheel_does_nothing_and_grabs_nothing_while_the_pointer_is_free(display):
    mapper = InputMapper()
    send(mapper, wheel(-1), click(4), click(5))
    assert not mapper.grabbed and mapper.action() == Action.null()
