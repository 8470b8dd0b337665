"""Compare `eval.score` reports: each setting's headline figures as a mean and spread over its runs.

    python -m eval.score --model gameworld/pretrained/default --seed 1 --out eval_t1_s1   # and so on
    python -m eval.compare --group "temperature 1" eval_t1_s0 eval_t1_s1 \\
        --group "temperature 0.9" eval_t09_s0 eval_t09_s1 --out eval/results/temperature

Writes `compare.md`, `compare.json` and `psnr_vs_horizon.png` (each group's mean curve) to `--out`.
Runs in the same position of every group that share worlds (`--seed-base`) and noise seed (`--seed`)
pair up: the table then also gives each group's run-by-run difference from the first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from gameworld.atomic import write_text_atomic
from gameworld.metrics.compare import Run, compare, markdown, to_json
from gameworld.metrics.evaluate import COPY_LAST
from gameworld.metrics.report import command_line, line_plot, write_json_report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--group", nargs="+", action="append", required=True, metavar=("NAME", "REPORT"),
        help="a setting's name and its eval.score report folders (repeat for each setting)",
    )
    parser.add_argument("--out", type=Path, required=True, help="comparison folder")
    return parser.parse_args(argv)


def mean_curve(runs: list[Run], row: str) -> list[float]:
    """The mean over runs of a row's PSNR-vs-frame curve (frame 0, the shared start, left out)."""
    curves = [run.results["rows"][row]["curves"]["psnr"][1:] for run in runs if row in run.results["rows"]]
    if not curves:
        return []
    length = min(len(c) for c in curves)
    return np.mean([np.asarray(c[:length], dtype=float) for c in curves], axis=0).tolist()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = command_line("eval.compare", argv)
    try:
        groups = {}
        for name, *reports in args.group:
            if not reports:
                raise ValueError(f"group {name!r} names no report folders")
            if name in groups:
                raise ValueError(f"group {name!r} is named twice")
            groups[name] = [Run.load(report) for report in reports]
        comparison = compare(groups)
    except (FileNotFoundError, ValueError) as err:
        print(f"eval.compare: {err}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(comparison, command)
    write_text_atomic(args.out / "compare.md", text)
    write_json_report(args.out / "compare.json", to_json(comparison))
    curves = {name: mean_curve(runs, "model") for name, runs in groups.items()}
    curves[COPY_LAST] = mean_curve(next(iter(groups.values())), COPY_LAST)
    curves = {name: curve for name, curve in curves.items() if curve}
    line_plot(args.out / "psnr_vs_horizon.png", "PSNR to ground truth (dB) vs frame, mean over runs", curves)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
