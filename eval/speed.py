"""Speed benchmarks: frames per second, as a table and JSON (medians over many frames).

    python -m eval.speed --voxel                      # the voxel game at 256x144 and 128x128, one core

Each mode is one function returning rows; `main` picks the mode, prints the table and writes
`eval/results/<mode>_speed.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from tqdm import tqdm

RESULTS = Path(__file__).resolve().parent / "results"


def parse_sizes(text: str) -> list[tuple[int, int]]:
    try:
        return [tuple(int(v) for v in item.lower().split("x")) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must look like 256x144,128x128, got {text!r}") from None


def bench_voxel(
    sizes: list[tuple[int, int]], frames: int = 100, warmup: int = 10, seed: int = 0,
    biomes: tuple[str, ...] | None = None,
) -> list[dict]:
    """Time `VoxelWorld.step` (tick + render + HUD) and `render` alone, per size over the biomes.

    The player is the seeded `ScriptedPlayer`, so the camera turns and walks as in generated data.
    """
    from gameworld.voxel import BIOMES, VoxelWorld
    from gameworld.voxel.players import ScriptedPlayer

    rows = []
    for width, height in sizes:
        step_s, render_s = [], []
        for biome in tqdm(biomes or BIOMES, desc=f"voxel {width}x{height}", leave=False):
            world = VoxelWorld(seed=seed, biome=biome, width=width, height=height)
            player = ScriptedPlayer(seed)
            world.reset()
            info = world.info()
            for t in range(warmup + frames):
                action = player.act(info)
                start = time.perf_counter()
                _, info = world.step(action)
                middle = time.perf_counter()
                world.render()
                end = time.perf_counter()
                if t >= warmup:
                    step_s.append(middle - start)
                    render_s.append(end - middle)
        median_step = statistics.median(step_s)
        rows.append({
            "mode": "voxel", "width": width, "height": height, "frames": len(step_s),
            "step_fps": 1.0 / median_step, "render_fps": 1.0 / statistics.median(render_s),
            "step_ms_median": 1000 * median_step,
            "step_ms_p90": 1000 * statistics.quantiles(step_s, n=10)[-1],
        })
    return rows


def print_table(rows: list[dict]) -> None:
    print(
        f"{'mode':<8}{'size':>10}{'frames':>8}{'step fps':>10}{'render fps':>12}"
        f"{'ms median':>11}{'ms p90':>9}"
    )
    for r in rows:
        size = f"{r['width']}x{r['height']}"
        print(
            f"{r['mode']:<8}{size:>10}{r['frames']:>8}{r['step_fps']:>10.1f}{r['render_fps']:>12.1f}"
            f"{r['step_ms_median']:>11.2f}{r['step_ms_p90']:>9.2f}"
        )


def write_json(path: Path, rows: list[dict], settings: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "rows": rows, "settings": settings,
        "machine": {
            "platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()
        },
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)


def pin_to_one_core() -> int | None:
    """Run this process on a single CPU (Linux), so figures are per core; returns the CPU or None."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--voxel", action="store_true", help="benchmark the voxel game")
    parser.add_argument("--sizes", type=parse_sizes, default=[(256, 144), (128, 128)], help="WxH,WxH")
    parser.add_argument("--frames", type=int, default=100, help="timed frames per biome and size")
    parser.add_argument("--out", type=Path, help="JSON path (default eval/results/<mode>_speed.json)")
    parser.add_argument("--all-cores", action="store_true", help="do not pin the process to one core")
    args = parser.parse_args(argv)
    if not args.voxel:
        parser.error("choose a mode: --voxel")
    if args.frames < 2:
        parser.error("--frames must be at least 2")
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    cpu = None if args.all_cores else pin_to_one_core()
    rows = bench_voxel(args.sizes, frames=args.frames)
    print_table(rows)
    out = args.out or RESULTS / "voxel_speed.json"
    write_json(out, rows, {"frames_per_biome": args.frames, "pinned_cpu": cpu, "threads": 1})
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
