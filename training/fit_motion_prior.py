"""Fit a model directory's motion prior on episodes (see `gameworld.motion_prior`).

    python -m training.fit_motion_prior --episodes data/default/voxel --model MODEL_DIR --level 0.45

Reads every episode under `--episodes` (any format `gameworld.data` opens), measures the view's
motion between consecutive frames with `ego_motion`, fits the linear map from the action to that
motion, prints it (in pixels per frame at the model's resolution) and writes
`MODEL_DIR/motion_prior.json`; `--level` also makes the engine use it by default (the
`motion_prior` noise level in `gameworld.json`'s sampler), and start still frames from the rest
frame at that level too (`still_level`; `--still-level` gives it another). The episodes should be the world
model's training episodes at its resolution; fitting 32 episodes of 400 frames at 256x144 took
90 s on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import numpy as np

from gameworld.data import find_episodes, open_episode
from gameworld.data.errors import EpisodeError
from gameworld.engine import EngineSettings
from gameworld.modeldir import read_config, resolve_model_dir, write_config
from gameworld.motion_prior import MotionPrior, fit_on_episodes

FRAMES_OF = {"motion_prior": "moving frames", "still_level": "still frames"}  # the sampler's levels
MIN_SHOWN = 0.05  # pixels (or 0.05% zoom) per frame: smaller weights are not printed


def format_prior(prior: MotionPrior, width: int, height: int) -> str:
    """The prior's weights that move the view, as a Markdown table in pixels per frame."""
    rows = ["| feature | zoom % | pan x px | pan y px |", "|---|---|---|---|"]
    for name, (zoom, pan_x, pan_y) in zip(prior.features, prior.weights, strict=True):
        figures = (100 * zoom, pan_x * width, pan_y * height)
        if max(abs(f) for f in figures) >= MIN_SHOWN:
            unit = " (per degree)" if name in ("dpitch", "dyaw") else ""
            rows.append(f"| {name}{unit} | " + " | ".join(f"{f:+.2f}" for f in figures) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", required=True, help="folder of episodes to fit on")
    parser.add_argument("--model", required=True, help="model directory that receives motion_prior.json")
    parser.add_argument("--level", type=float, help="turn the prior on in gameworld.json at this noise level")
    parser.add_argument("--still-level", type=float,
                        help="noise level of still frames from the rest frame (default: --level)")
    args = parser.parse_args(argv)
    try:
        model_dir = resolve_model_dir(args.model)
        config = read_config(model_dir)
        still_level = args.level if args.still_level is None else args.still_level
        levels = {"motion_prior": args.level, "still_level": still_level}
        levels = {name: level for name, level in levels.items() if level is not None}
        if levels:
            config = replace(config, sampler=replace(config.sampler, **levels))
            EngineSettings.from_config(config)  # a level outside (0, 1) fails here, before the fit
        paths = find_episodes(args.episodes)
        if not paths:
            raise FileNotFoundError(f"{args.episodes}: no episodes found")
        episodes = [open_episode(path) for path in paths]
        for episode in episodes:
            height, width = np.shape(next(episode.frames()))[:2]
            if (width, height) != (config.width, config.height):
                raise ValueError(
                    f"{episode.video_path}: frames of {width}x{height}, the model draws "
                    f"{config.width}x{config.height}: fit on episodes at the model's resolution"
                )
        prior = fit_on_episodes(episodes, config.space)
    except (FileNotFoundError, ValueError, EpisodeError) as err:
        print(f"fit_motion_prior: {err}", file=sys.stderr)
        return 2
    print(format_prior(prior, config.width, config.height))
    print(f"fitted on {prior.transitions} transitions of {len(paths)} episodes")
    print(f"wrote {prior.save(model_dir)}")
    if levels:
        path = write_config(model_dir, config)
        told = ", ".join(f"{FRAMES_OF[name]} from noise level {level}" for name, level in levels.items())
        print(f"wrote {path}: the engine starts {told}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
