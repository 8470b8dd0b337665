"""Play in a pygame window: `python -m app.play [--voxel] [--biome forest] [--seed 0]`.

Controls as in Minecraft: WASD, space, left shift (sneak), left ctrl (sprint), mouse look (click
the window to grab the pointer, Esc frees it), left/right click, 1-9. Until a default world model
ships, the voxel game is what opens, with or without `--voxel`.
"""

from __future__ import annotations

import argparse

from gameworld.ui import GameLoop, InputConfig, LoopConfig
from gameworld.voxel import BIOMES, VoxelWorld


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 256x144, got {text!r}") from None
    return width, height


def make_env(args: argparse.Namespace) -> VoxelWorld:
    width, height = args.size
    return VoxelWorld(seed=args.seed, biome=args.biome, width=width, height=height, hud=not args.no_hud)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--voxel", action="store_true", help="play the voxel game (the default for now)")
    parser.add_argument("--biome", choices=BIOMES, default="forest")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=parse_size, default=(256, 144), help="frame WxH (default 256x144)")
    parser.add_argument("--scale", type=int, default=4, help="window pixels per frame pixel")
    parser.add_argument("--fps", type=float, default=20.0, help="ticks per second (the game runs at 20)")
    parser.add_argument("--sensitivity", type=float, default=1.0, help="mouse: x 0.15 degrees per unit")
    parser.add_argument("--no-hud", action="store_true", help="hide the crosshair and hotbar")
    args = parser.parse_args(argv)
    try:
        env = make_env(args)
        loop_config = LoopConfig(fps=args.fps, scale=args.scale, title=f"gameworld - voxel {args.biome}")
        input_config = InputConfig(sensitivity=args.sensitivity)
    except ValueError as err:
        parser.error(str(err))
    GameLoop(env, loop_config, input_config).run()


if __name__ == "__main__":
    main()
