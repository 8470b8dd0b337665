"""The command line every training job shares: read the recipe, set up the processes, run.

    def main(argv: list[str] | None = None) -> int:
        return run_job("train", argv, WorldModelJob, run, __doc__, "training/configs/default.yaml")

Exit codes: 0 the job wrote its result; 1 it ended without one; 2 the input is unusable. A recipe
that does not parse is argparse's usage message; input the job cannot use (a missing data folder,
a model directory without weights, a broken episode or checkpoint) is one line on stderr that names
the file and the problem, not a traceback from deep inside the job.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from training import distributed
from training.checkpoint import CheckpointError
from training.config import parse_job_args

T = TypeVar("T")
# What unusable input raises (EpisodeError and ConfigError are ValueErrors).
INPUT_ERRORS: tuple[type[Exception], ...] = (FileNotFoundError, ValueError, CheckpointError)


def run_job(
    name: str,
    argv: Sequence[str] | None,
    job: type[T],
    run: Callable[[T, distributed.DistEnv], object],
    description: str,
    default_config: str | None,
) -> int:
    """Parse `job` from `--config` and overrides, run `run(cfg, env)` in this process's
    distributed setting, and turn unusable input into one line on stderr (exit 2), prefixed by the
    job's `name`."""
    cfg = parse_job_args(argv, job, description, default_config)
    env = distributed.setup(cfg.train.device)
    try:
        return 0 if run(cfg, env) is not None else 1
    except INPUT_ERRORS as err:
        print(f"{name}: {err}", file=sys.stderr)
        return 2
    finally:
        distributed.teardown(env)
