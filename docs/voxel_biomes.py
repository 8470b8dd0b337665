"""Render the start view of every voxel biome into one labelled picture (docs/voxel_biomes.png).

    python docs/voxel_biomes.py [--seed 0] [--size 320x180] [--out docs/voxel_biomes.png]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from gameworld.actions import Action
from gameworld.voxel import BIOMES, VoxelWorld

LABEL_HEIGHT = 18
COLUMNS = 4


def biome_sheet(seed: int, width: int, height: int) -> Image.Image:
    rows = -(-len(BIOMES) // COLUMNS)
    sheet = Image.new("RGB", (COLUMNS * width, rows * (height + LABEL_HEIGHT)), (20, 20, 20))
    draw = ImageDraw.Draw(sheet)
    for k, biome in enumerate(BIOMES):
        world = VoxelWorld(seed=seed, biome=biome, width=width, height=height)
        world.reset()
        frame, _ = world.step(Action.null())  # one tick so the player stands settled
        x, y = (k % COLUMNS) * width, (k // COLUMNS) * (height + LABEL_HEIGHT)
        sheet.paste(Image.fromarray(np.ascontiguousarray(frame)), (x, y + LABEL_HEIGHT))
        draw.text((x + 4, y + 3), f"{biome} (seed {seed})", fill=(235, 235, 235))
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", default="320x180", help="WxH of each biome frame")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("voxel_biomes.png"))
    args = parser.parse_args()
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size must look like 320x180, got {args.size!r}")
    sheet = biome_sheet(args.seed, width, height)
    tmp = args.out.with_name(args.out.name + ".tmp.png")
    sheet.save(tmp)
    os.replace(tmp, args.out)
    print(f"wrote {args.out} ({sheet.width}x{sheet.height})")


if __name__ == "__main__":
    main()
