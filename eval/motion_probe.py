"""Does a world model make the motion its inputs ask for, or only follow what its noisy frame shows?

    python -m eval.motion_probe --model gameworld/pretrained/default --out eval/results/motion_probe

For each input (walk forward/back, strafe left/right, turn left/right, look up/down) held for one
frame after a context in which the player stood still or already did the same, in `--worlds`
held-out voxel worlds: the motion response (1: the view moves as the game's, 0: it stands still) of
the model's one-call estimate of the next frame from noise levels `--levels` (1 is where sampling
starts: only the model can supply the motion there), from the last frame moved by the game's own
zoom and pan and noised to `--moved-level` (can the model finish a frame a camera model moved?), and
of the frame its engine samples. Writes `motion_probe.md` and `motion_probe.json` to `--out`. See
`gameworld/metrics/motion_probe.py`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from gameworld.atomic import write_text_atomic
from gameworld.engine import WorldEngine
from gameworld.metrics.motion_probe import (
    CONTEXTS,
    PROBE_INPUTS,
    engine_predictor,
    moved_last_frame,
    probe_cases,
    run_probe,
    x0_predictor,
)
from gameworld.metrics.report import command_line, write_json_report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="model directory (or a shipped model's name)")
    parser.add_argument("--out", type=Path, required=True, help="folder for motion_probe.md / .json")
    parser.add_argument("--levels", type=float, nargs="+", default=[1.0, 0.6],
                        help="noise levels of the one-call estimates (1: pure noise)")
    parser.add_argument("--moved-level", type=float, default=0.6,
                        help="also the estimate from the last frame moved by the game's own motion, "
                             "noised to this level (0: not)")
    parser.add_argument("--worlds", type=int, default=4, help="held-out worlds per input")
    parser.add_argument("--seed-base", type=int, default=100_000, help="world seeds: base + 100 x world")
    parser.add_argument("--seed", type=int, default=0, help="noise seed")
    parser.add_argument("--device", default=None, help="cuda | mps | cpu (default: the best available)")
    return parser.parse_args(argv)


def markdown(results: dict, command: str) -> str:
    lines = ["# Motion probe", "", "```bash", command, "```", "",
             "Motion response of one next frame (1: moves as the game does, 0: stands still), over the",
             "worlds; `x0 @ t`: the model's one-call estimate from noise level t, `moved @ t`: the same from",
             "the last frame moved by the game's own zoom and pan, `sampled`: its engine.", ""]
    predictors = list(results)
    for context in CONTEXTS:
        lines += [f"## Context: {context}", "", "| input | " + " | ".join(predictors) + " |",
                  "|---|" + "---|" * len(predictors)]
        for name in PROBE_INPUTS:
            cells = [results[p][context][name] for p in predictors]
            lines.append(f"| {name} | " + " | ".join("-" if c is None else f"{c:.2f}" for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = command_line("eval.motion_probe", argv)
    try:
        engine = WorldEngine.from_pretrained(args.model, device=args.device, seed=args.seed)
        tokenizer, model = engine.tokenizer, engine.model
        predictors = {f"x0 @ t={level:g}": x0_predictor(tokenizer, model, engine.space, level, args.seed)
                      for level in args.levels}
        if args.moved_level:
            predictors[f"moved @ t={args.moved_level:g}"] = x0_predictor(
                tokenizer, model, engine.space, args.moved_level, args.seed, start=moved_last_frame
            )
        predictors["sampled"] = engine_predictor(engine)
        context = engine.stream.window - 1
        cases = probe_cases(engine.config.width, engine.config.height, context, args.worlds, args.seed_base)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    def reconstruct(frame):
        return tokenizer.decode(tokenizer.encode(frame[None, None]))[0, 0].cpu().numpy()

    results = run_probe(cases, predictors, reconstruct)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"model": str(args.model), "worlds": args.worlds, "seed_base": args.seed_base,
              "context_frames": context, "engine": {**asdict(engine.settings.sampling), "seed": args.seed},
              "response": results}
    write_json_report(args.out / "motion_probe.json", report)
    text = markdown(results, command)
    write_text_atomic(args.out / "motion_probe.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
