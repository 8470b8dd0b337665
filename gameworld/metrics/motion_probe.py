"""Where a world model's motion comes from: its prediction of one next frame, at a noise level t.

A frame is drawn from pure noise (t = 1), so the first denoising call alone must put the motion the
action asks for into its estimate of the clean frame, x0 = x_t - t * v. At a lower t the noisy frame
itself carries much of the true next frame, and a model can follow it without knowing what the action
does. The probe holds each input of `PROBE_INPUTS` for one frame after a context in which the player
stood still or already did the same, in held-out voxel worlds, and reads the motion response
(`gameworld.metrics.motion`) of each predictor's frame against the game's next frame: 1 moves as the
game does, 0 stands still.

A predictor maps (frames uint8 [K + 1, H, W, 3]: the context and the game's next frame, which only a
prediction from t < 1 may see, through its noise; the K + 1 actions) to the next frame [H, W, 3];
`x0_predictor` and `engine_predictor` wrap a model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from gameworld.actions import Action
from gameworld.diffusion.consistency import consistency_function
from gameworld.diffusion.flow import add_noise
from gameworld.metrics.motion import apply_motion, ego_motion, motion_response
from gameworld.voxel import BIOMES, VoxelWorld

TURN_DEG = 5.0  # the probed camera turn per frame, as the GameWorld Score clips ask
# input -> (action held, the motion component it moves)
PROBE_INPUTS: dict[str, tuple[Action, str]] = {
    "walk forward": (Action.of("forward"), "zoom"),
    "walk back": (Action.of("back"), "zoom"),
    "strafe left": (Action.of("left"), "pan_x"),
    "strafe right": (Action.of("right"), "pan_x"),
    "turn left": (Action.of(camera=(0.0, -TURN_DEG)), "pan_x"),
    "turn right": (Action.of(camera=(0.0, TURN_DEG)), "pan_x"),
    "look up": (Action.of(camera=(-TURN_DEG, 0.0)), "pan_y"),
    "look down": (Action.of(camera=(TURN_DEG, 0.0)), "pan_y"),
}
CONTEXTS: tuple[str, ...] = ("still", "moving")  # before the probed frame: null actions / the same input
# (frames [K + 1, H, W, 3]: the context and the game's next frame, actions [K + 1]) -> next frame [H, W, 3]
Predictor = Callable[[np.ndarray, list[Action]], np.ndarray]


@dataclass(frozen=True)
class ProbeCase:
    """One probed frame: `frames` [K + 1, H, W, 3] are the context and the game's next frame."""

    name: str
    context: str
    seed: int
    frames: np.ndarray
    actions: tuple[Action, ...]


def probe_cases(
    width: int, height: int, context_frames: int, worlds: int = 4, seed_base: int = 100_000
) -> list[ProbeCase]:
    """Every input after every context in `worlds` held-out worlds (seed `seed_base + 100 * i`, biomes
    in turn), each from the world's first frame (the context's first)."""
    if min(context_frames, worlds) < 1:
        raise ValueError(f"the probe needs context_frames, worlds >= 1, got {context_frames}, {worlds}")
    cases = []
    for world_index in range(worlds):
        seed, biome = seed_base + 100 * world_index, BIOMES[world_index % len(BIOMES)]
        for name, (action, _) in PROBE_INPUTS.items():
            for context in CONTEXTS:
                world = VoxelWorld(seed=seed, biome=biome, width=width, height=height)
                before = action if context == "moving" else Action.null()
                actions = (Action.null(), *[before] * (context_frames - 1), action)
                frames = np.stack([world.reset(), *[world.step(a)[0] for a in actions[1:]]])
                cases.append(ProbeCase(name, context, seed, frames, actions))
    return cases


def run_probe(
    cases: list[ProbeCase],
    predictors: dict[str, Predictor],
    reconstruct: Callable[[np.ndarray], np.ndarray] = lambda frame: frame,
) -> dict[str, dict[str, dict[str, float | None]]]:
    """{predictor: {context: {input: motion response over the worlds}}}. A predicted frame's motion is
    read from `reconstruct(last context frame)` (the tokenizer's round trip for a latent model, so
    that the decoder's blur is on both sides), the game's from its own two frames."""
    motion: dict[tuple[str, str, str], list[np.ndarray]] = {}
    reference: dict[tuple[str, str], list[np.ndarray]] = {}
    for case in cases:
        reference.setdefault((case.context, case.name), []).append(ego_motion(case.frames[-2:])[0])
        previous = reconstruct(case.frames[-2])  # the last context frame
        for predictor, predict in predictors.items():
            frame = predict(case.frames, list(case.actions))
            motion.setdefault((predictor, case.context, case.name), []).append(
                ego_motion(np.stack([previous, frame]))[0]
            )
    results: dict[str, dict[str, dict[str, float | None]]] = {}
    for (predictor, context, name), moved in motion.items():
        component = PROBE_INPUTS[name][1]
        response = motion_response(np.stack(moved), np.stack(reference[(context, name)]))
        results.setdefault(predictor, {}).setdefault(context, {})[name] = response[component]
    return results


def moved_last_frame(frames: np.ndarray) -> np.ndarray:
    """The last context frame moved by the game's own zoom and pan to its next frame: what a perfect
    model of the camera alone would draw next (objects, light and parallax aside)."""
    return apply_motion(frames[-2], ego_motion(frames[-2:])[0])


def x0_predictor(
    tokenizer, model, space, level: float, seed: int = 0,
    start: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Predictor:
    """The world model's one-call estimate of the next frame from noise level `level` (1: pure noise,
    below 1: the game's next frame mixed with noise, or `start(frames)` instead of it, e.g.
    `moved_last_frame`), its context clean, decoded by `tokenizer`."""
    if not 0 < level <= 1:
        raise ValueError(f"the noise level must be in (0, 1], got {level}")
    generator = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def predict(frames: np.ndarray, actions: list[Action]) -> np.ndarray:
        if start is not None:
            frames = np.concatenate([frames[:-1], start(frames)[None]])
        latents = tokenizer.encode(torch.from_numpy(frames[None])).to(model.dtype)  # [1, K + 1, C, h, w]
        levels = torch.zeros(latents.shape[:2], dtype=latents.dtype, device=latents.device)
        levels[:, -1] = level
        noise = torch.randn(latents.shape, generator=generator).to(latents)
        noisy = add_noise(latents, noise, levels)  # the context stays clean (level 0)
        velocity = model(noisy, levels, space.encode(actions)[None].to(latents))
        clean = consistency_function(noisy, levels, velocity)[:, -1:]  # x0 = x_t - t v: [1, 1, C, h, w]
        return tokenizer.decode(clean)[0, 0].cpu().numpy()

    return predict


def engine_predictor(engine) -> Predictor:
    """The frame a `WorldEngine` samples at its own settings (the game's next frame unseen)."""

    def predict(frames: np.ndarray, actions: list[Action]) -> np.ndarray:
        engine.reset(frames=frames[:-1], actions=actions[:-1])
        return engine.step(actions[-1])

    return predict
