"""Play in a pygame window: `python -m app.play [--model DIR | --voxel] [--side-by-side] [--biome forest]`.

What plays: a world model given with `--model DIR`, else the shipped default model when
`gameworld/pretrained/default/` exists, else the voxel game (`--voxel` asks for it outright).
`--side-by-side` runs the voxel game (left) and the model (right) on the same input.

Controls as in Minecraft: WASD, space jump, left shift sneak, left ctrl sprint, mouse look (click
the window to grab the pointer), left/right click attack/use, 1-9 and the wheel for the hotbar,
E inventory. Esc frees the pointer (a second Esc quits), F1 toggles the HUD, P pauses, R resets,
F12 saves a screenshot to ./screenshots.
"""

from __future__ import annotations

import argparse
import sys

from gameworld.data import EpisodeError
from gameworld.motion_prior import add_motion_prior_arguments, motion_prior_settings
from gameworld.starts import load_image
from gameworld.ui import (
    GameLoop,
    InputConfig,
    LoopConfig,
    SessionRecorder,
    SourceChoice,
    StartScene,
    open_source,
)
from gameworld.voxel import BIOMES

WINDOW_WIDTH = 1280  # the window width --scale aims at when not given


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 256x144, got {text!r}") from None
    return width, height


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app.play", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    what = parser.add_argument_group("what plays")
    what.add_argument("--voxel", action="store_true", help="play the voxel game itself (the ground truth)")
    what.add_argument("--model", metavar="DIR", help="a model directory (default: the shipped default model)")
    what.add_argument("--side-by-side", action="store_true", help="voxel game left, model right, one input")
    what.add_argument("--device", help="cpu, cuda, mps (default: the fastest there is)")
    what.add_argument("--steps", type=int, help="denoising steps per frame (default: the model's)")
    what.add_argument("--speculative", type=int, help="frames generated ahead while an action holds")
    what.add_argument("--temperature", type=float,
                      help="scale of each frame's starting noise: < 1 calmer (default: the model's)")
    add_motion_prior_arguments(what)
    start = parser.add_argument_group("where it starts")
    start.add_argument("--biome", choices=BIOMES, default="forest")
    start.add_argument("--seed", type=int, default=0, help="voxel world seed")
    start.add_argument("--image", metavar="PNG", help="start a model from this image")
    start.add_argument("--video", metavar="MP4", help="start a model from a video's first frames")
    window = parser.add_argument_group("window")
    window.add_argument("--size", type=parse_size, help="voxel frame WxH (default 256x144)")
    window.add_argument("--scale", type=int, help=f"window px per frame px (default: ~{WINDOW_WIDTH} wide)")
    window.add_argument("--smooth", action="store_true", help="scale the frame smoothly, not in sharp pixels")
    window.add_argument("--fps", type=float, help="ticks per second (default: the world's, 20)")
    window.add_argument("--sensitivity", type=float, default=1.0, help="mouse: x 0.15 degrees per unit")
    window.add_argument("--no-hud", action="store_true", help="hide the voxel game's crosshair and hotbar")
    window.add_argument("--no-stats", action="store_true", help="start with the HUD hidden (F1 shows it)")
    parser.add_argument("--record", metavar="DIR", help="write the session as native episodes into DIR")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    given = {"steps": args.steps, "speculative": args.speculative, "temperature": args.temperature}
    settings = {name: value for name, value in given.items() if value is not None}
    settings.update(motion_prior_settings(args))
    try:
        image = load_image(args.image) if args.image else None
        scene = StartScene(seed=args.seed, biome=args.biome, image=image, video=args.video)
        choice = SourceChoice(voxel=args.voxel, model=args.model, side_by_side=args.side_by_side,
                              size=args.size, hud=not args.no_hud, device=args.device, settings=settings)
        source = open_source(choice)
        frame, _ = source.reset(scene)  # a bad start is reported here, before any window opens
        scale = args.scale or max(1, min(16, WINDOW_WIDTH // frame.shape[1]))
        loop_config = LoopConfig(fps=args.fps or source.fps, scale=scale, title=f"gameworld - {source.label}",
                                 smooth=args.smooth, hud=not args.no_stats)
        input_config = InputConfig(sensitivity=args.sensitivity)
        recorder = SessionRecorder(args.record) if args.record else None
    except (ValueError, FileNotFoundError, EpisodeError) as err:
        parser.error(str(err))
    if choice.resolved_model() is None and not args.voxel:
        print("no default world model ships yet: playing the voxel game (--model DIR plays a model)")
    print(f"playing {source.label}")
    loop = GameLoop(source, loop_config, input_config, recorder)
    loop.run()
    for path in loop.saved:
        print(f"saved {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
