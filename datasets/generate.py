"""Generate voxel-game episodes played by seeded scripted players (native episode format).

    python datasets/generate.py --out data/voxel --episodes 64 --frames 600 --size 256x144 --workers 2
    python datasets/generate.py --out data/voxel --episodes 4096 --shard 3/16   # one of 16 jobs
    python datasets/generate.py --out data/idm_train --episodes 96 --size 192x108 --player controls

Episode i plays biome `biomes[i % len(biomes)]` with world seed `seed + i` and its own player
seed, and is written as `<out>/voxel_<i>_<biome>.{mp4,jsonl,json}`. Finished episodes (their
`.json` is written last) are skipped, so an interrupted run resumes where it stopped (one written
with other --frames, --size, --seed, --player or HUD setting is written again); with
`--shard i/N` a job does the episodes whose number is i modulo N.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from pathlib import Path

from tqdm import tqdm

from gameworld.data import episode_complete
from gameworld.voxel import BIOMES
from gameworld.voxel.episodes import write_voxel_episode
from gameworld.voxel.players import PLAYER_PRESETS

PLAYER_SEED_STRIDE = 1_000_003  # keeps player seeds of different --seed runs apart


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 256x144, got {text!r}") from None
    if width < 8 or height < 8:
        raise argparse.ArgumentTypeError(f"size {text!r} is too small (at least 8x8)")
    return width, height


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shard must look like 3/16, got {text!r}") from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"shard {text!r}: need 0 <= i < N")
    return index, count


def parse_biomes(text: str) -> tuple[str, ...]:
    names = tuple(b.strip() for b in text.split(",") if b.strip())
    unknown = [b for b in names if b not in BIOMES]
    if unknown or not names:
        known = ",".join(BIOMES)
        raise argparse.ArgumentTypeError(f"unknown biome(s) {unknown or text!r}; choose from {known}")
    return names


def finished_as_asked(job: dict) -> bool:
    """True when the job's episode is finished and was written with the job's settings (an episode
    of another length, size, seed or HUD setting under the same name is written again)."""
    if not episode_complete(job["stem"]):
        return False
    marker = json.loads(Path(job["stem"]).with_suffix(".json").read_text())
    asked = {"frame_count": job["frames"], "width": job["width"], "height": job["height"],
             "seed": job["seed"], "player_seed": job["player_seed"], "hud": job["hud"],
             "lossless": job["lossless"], "biome": job["biome"]}
    same_player = marker.get("player_preset", "default") == job["player"]  # older episodes: default
    return same_player and all(marker.get(key) == value for key, value in asked.items())


def episode_jobs(args: argparse.Namespace) -> list[dict]:
    """The episodes of this shard not finished as asked, as keyword arguments for one writer each."""
    shard, shards = args.shard
    jobs = []
    for i in range(shard, args.episodes, shards):
        biome = args.biomes[i % len(args.biomes)]
        job = dict(
            stem=args.out / f"voxel_{i:06d}_{biome}", seed=args.seed + i, biome=biome, frames=args.frames,
            width=args.size[0], height=args.size[1], player_seed=args.seed * PLAYER_SEED_STRIDE + i,
            hud=not args.no_hud, lossless=args.lossless, player=args.player,
        )
        if not finished_as_asked(job):
            jobs.append(job)
    return jobs


def _write(job: dict) -> str:
    return str(write_voxel_episode(**job))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--episodes", type=int, required=True, help="total episodes over all shards")
    parser.add_argument("--frames", type=int, default=600, help="frames per episode (20 per second)")
    parser.add_argument("--size", type=parse_size, default=(256, 144), help="WxH (default 256x144)")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes")
    parser.add_argument("--shard", type=parse_shard, default=(0, 1), help="i/N: do episodes i, i+N, ...")
    parser.add_argument("--seed", type=int, default=0, help="base seed of worlds and players")
    parser.add_argument("--biomes", type=parse_biomes, default=BIOMES, help="comma-separated (default: all)")
    parser.add_argument("--no-hud", action="store_true", help="leave out the crosshair and hotbar")
    parser.add_argument("--lossless", action="store_true", help="bit-exact frames (much larger files)")
    parser.add_argument("--player", choices=sorted(PLAYER_PRESETS), default="default",
                        help="scripted player preset (controls: held GameWorld Score actions, for the IDM)")
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.frames < 1 or args.workers < 1:
        parser.error("--episodes, --frames and --workers must be at least 1")
    if not args.lossless and (args.size[0] % 2 or args.size[1] % 2):
        parser.error(f"--size {args.size[0]}x{args.size[1]}: H.264 needs even sides unless --lossless")
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = episode_jobs(args)
    total = len(range(args.shard[0], args.episodes, args.shard[1]))
    done = total - len(jobs)
    print(f"{done} of {total} episodes of this shard done already; writing {len(jobs)}", file=sys.stderr)
    with tqdm(total=len(jobs), unit="episode") as bar:
        if args.workers == 1:
            for job in jobs:
                _write(job)
                bar.update()
        else:
            with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
                for _ in pool.imap_unordered(_write, jobs):
                    bar.update()
    return 0


if __name__ == "__main__":
    sys.exit(main())
