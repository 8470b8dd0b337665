"""The README's video: the voxel game (left) and a world model (right) played with the same inputs.

    python docs/play_video.py [--model DIR] [--out docs/play_default.mp4] [--frames 100]

Writes the mp4 and, beside it, a GIF at half the frame rate (the README plays it inline) and a PNG of
every 25th frame (one row each) for a page that shows no video.
The inputs are a fixed script (walk, look around, jump, turn back), the start is the voxel game in
the forest with world seed 4242 (no recipe generates data from it), the noise seed is 0: the video
is the same every time for the same model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from gameworld.actions import Action
from gameworld.data.video import write_video
from gameworld.ui.sources import EngineSource, SideBySide, StartScene, VoxelSource

SCENE = StartScene(seed=4242, biome="forest")
SCRIPT = (  # (frames, action)
    [(20, Action.of("forward"))]
    + [(15, Action.of(camera=(0.0, 4.0)))]
    + [(15, Action.of("forward", "jump"))]
    + [(10, Action.of(camera=(2.0, 0.0))), (10, Action.of(camera=(-2.0, 0.0)))]
    + [(15, Action.of("forward", camera=(0.0, -3.0)))]
    + [(15, Action.null())]
)


def script_actions(frames: int) -> list[Action]:
    actions = [action for count, action in SCRIPT for _ in range(count)]
    return (actions * (frames // len(actions) + 1))[:frames]


def write_gif(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """An endlessly looping GIF (what a README page plays inline), written under a temporary name."""
    images = [Image.fromarray(frame).quantize(colors=128) for frame in frames]
    tmp = path.with_name(f".tmp.{path.name}")
    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps),
                   loop=0)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default", help="model directory or shipped name")
    parser.add_argument("--out", type=Path, default=Path("docs/play_default.mp4"))
    parser.add_argument("--frames", type=int, default=100)
    args = parser.parse_args(argv)

    from gameworld.engine import WorldEngine

    engine = WorldEngine.from_pretrained(args.model)
    width, height = engine.config.width, engine.config.height
    source = SideBySide(VoxelSource(width=width, height=height), EngineSource(engine, args.model))
    first, _ = source.reset(SCENE)
    frames = [first]
    for action in tqdm(script_actions(args.frames), desc="playing", unit="frame"):
        frame, _ = source.step(action)
        frames.append(frame)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".tmp.{args.out.name}")
    write_video(tmp, frames, fps=source.fps)
    tmp.replace(args.out)
    strip = np.concatenate(frames[::25], axis=0)  # [rows * H, 2W + gap, 3]
    Image.fromarray(strip).save(args.out.with_suffix(".png"))
    write_gif(args.out.with_suffix(".gif"), frames[::2], fps=source.fps / 2)
    print(f"wrote {args.out} ({len(frames)} frames), {args.out.with_suffix('.png')} and "
          f"{args.out.with_suffix('.gif')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
