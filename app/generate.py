"""Generate a video offline from an action script:

    python -m app.generate --model DIR --actions script.jsonl --start voxel:forest:7 --out out.mp4

The script has one action per line, each line one step (one generated frame):
  - a native jsonl line: {"keys": ["forward", "jump"], "camera": [0.0, 2.5]} (camera: dpitch, dyaw degrees)
  - a JSON list of key names: ["forward", "jump"]
  - key names separated by spaces or commas: forward jump   (`null` or `-` for no key)
Blank lines and lines starting with # are skipped.

`--start` is `voxel:BIOME:SEED` (the voxel game's first frame; `voxel`, `voxel:BIOME` use seed 0),
an image file (png, jpg), or an episode or video whose first frames become the context.
The output is a native episode: OUT.mp4, OUT.jsonl (the actions) and OUT.json; frame 0 is the start
frame, frame t the one generated for script line t.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from gameworld.actions import Action
from gameworld.data import EpisodeError, write_episode
from gameworld.data.action_lines import line_to_action
from gameworld.motion_prior import add_motion_prior_arguments, motion_prior_settings
from gameworld.starts import IMAGE_SUFFIXES, load_image

NULL_WORDS = ("null", "-", "none")


def parse_action_line(text: str) -> Action:
    """One script line (native JSON object, JSON list of key names, or bare key names) -> Action."""
    if text.startswith("{"):
        action, _ = line_to_action(json.loads(text))
        return action
    if text.startswith("["):
        keys = json.loads(text)
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ValueError(f"expected a list of key names, got {text!r}")
        return Action(frozenset(keys))
    words = text.replace(",", " ").split()
    if len(words) == 1 and words[0].lower() in NULL_WORDS:
        return Action.null()
    return Action(frozenset(words))


def read_action_script(path: str | Path, space) -> list[Action]:
    """Every action of a script file, checked against the action space; errors name the file and line."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such action script") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a text file ({err})") from None
    actions = []
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        try:
            actions.append(space.resolve(parse_action_line(text)))
        except (ValueError, TypeError) as err:  # json.JSONDecodeError is a ValueError
            raise ValueError(f"{path}, line {number}: {err}") from None
    if not actions:
        raise ValueError(f"{path}: the script has no actions")
    return actions


def parse_start(text: str) -> dict:
    """`voxel[:BIOME[:SEED]]` or a path -> keyword arguments of `WorldEngine.reset`."""
    if text == "voxel" or text.startswith("voxel:"):
        parts = text.split(":")
        if len(parts) > 3:
            raise ValueError(f"--start {text!r}: expected voxel:BIOME:SEED")
        from gameworld.voxel import BIOMES

        biome = parts[1] if len(parts) > 1 and parts[1] else "plains"
        if biome not in BIOMES:
            raise ValueError(f"--start {text!r}: unknown biome {biome!r}; choose one of {list(BIOMES)}")
        try:
            seed = int(parts[2]) if len(parts) > 2 else 0
        except ValueError:
            raise ValueError(f"--start {text!r}: the seed must be an integer") from None
        return {"biome": biome, "seed": seed}
    path = Path(text)
    if not path.exists():
        raise FileNotFoundError(f"--start {text}: no such file (or use voxel:BIOME:SEED)")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return {"frames": load_image(path)}
    return {"video": path}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app.generate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", default="default", help="model directory or shipped name")
    parser.add_argument("--actions", required=True, metavar="SCRIPT", help="action script, one step per line")
    parser.add_argument("--start", default="voxel", help="voxel:BIOME:SEED, an image, or an episode/video")
    parser.add_argument("--out", required=True, metavar="OUT.mp4", help="output episode (and .jsonl, .json)")
    parser.add_argument("--device", help="cpu, cuda, mps (default: the fastest there is)")
    parser.add_argument("--steps", type=int, help="denoising steps per frame (default: the model's)")
    parser.add_argument("--speculative", type=int, help="frames generated ahead while an action holds")
    parser.add_argument("--temperature", type=float,
                        help="scale of each frame's starting noise: < 1 calmer (default: the model's)")
    add_motion_prior_arguments(parser)
    parser.add_argument("--seed", type=int, help="noise seed (default 0)")
    parser.add_argument("--no-cache", action="store_true", help="re-encode the window for every frame")
    parser.add_argument("--lossless", action="store_true", help="store the frames bit-exact (larger file)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    given = {name: getattr(args, name) for name in ("steps", "speculative", "temperature", "seed")}
    settings = {name: value for name, value in given.items() if value is not None}
    settings.update(motion_prior_settings(args))
    if args.no_cache:
        settings["use_cache"] = False
    from gameworld.engine import WorldEngine

    try:
        start = parse_start(args.start)
        engine = WorldEngine.from_pretrained(args.model, device=args.device, **settings)
        actions = read_action_script(args.actions, engine.space)
        first = engine.reset(**start)
        began = time.perf_counter()
        frames = engine.rollout(actions, progress=True)
        elapsed = time.perf_counter() - began
        meta = {"source": "generated", "model": str(args.model), "start": args.start,
                "settings": asdict(engine.settings)}
        out = write_episode(
            args.out,
            np.concatenate([first[None], frames]),
            [Action.null(), *actions],
            fps=engine.config.fps,
            meta=meta,
            lossless=args.lossless,
        )
    except (ValueError, FileNotFoundError, EpisodeError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    stats = engine.stats
    rate = stats.acceptance_rate
    accepted = "" if rate is None else f", speculative frames accepted {100 * rate:.0f}%"
    print(
        f"wrote {out} ({len(frames) + 1} frames): {len(frames) / elapsed:.1f} frames/s on {engine.device}"
        f"{accepted}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
