"""Compare `eval.score` reports across runs: each setting's headline figures as a mean and a spread.

One run of the quick protocol is one draw of worlds and noise: on the default model the noise seed
alone moves the mouse accuracy by 6 points. A setting is judged by several runs (other `--seed`s
and `--seed-base`s), grouped here. Where every group holds runs of the same worlds and noise seeds
in the same order, the runs pair up and each group's difference from the first is taken run by
run, which cancels the luck of the draw that both share.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gameworld.metrics.evaluate import COPY_LAST, GROUND_TRUTH

IDLE_FRAMES = (100, 500, 1000)  # frames of the idle rollout whose drift from the truth is reported
# The protocol fields that decide which clips, worlds and starts a run plays.
DRAW_FIELDS = ("name", "starts_per_biome", "frames", "context", "seed_base", "long_frames", "width", "height",
               "starts_from")


@dataclass(frozen=True)
class Run:
    """One `eval.score` report."""

    path: Path
    results: dict

    @classmethod
    def load(cls, folder: str | Path) -> Run:
        path = Path(folder)
        file = path / "results.json" if path.is_dir() else path
        try:
            results = json.loads(file.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no results.json here (a python -m eval.score report)") from None
        except json.JSONDecodeError as err:
            raise ValueError(f"{file}: not valid JSON ({err})") from None
        if not isinstance(results, dict) or "model" not in results.get("rows", {}):
            raise ValueError(f"{file}: not an eval.score report (no rows.model)")
        return cls(path, results)

    @property
    def draw(self) -> tuple:
        """What the run's luck depends on: the protocol (worlds, clips) and the engine's noise seed.
        A field a report lacks (written before the field existed) counts as its empty default."""
        protocol = self.results.get("protocol", {})
        fields = tuple((name, protocol.get(name) or None) for name in DRAW_FIELDS)
        return fields, self.results.get("engine", {}).get("seed")


def _ratio(value: float | None, ceiling: float | None) -> float | None:
    return None if value is None or not ceiling else value / ceiling


def _at(curve: list | None, frame: int) -> float | None:
    """A long rollout's curve at `frame` (its last frame where the rollout is shorter)."""
    return curve[min(frame, len(curve) - 1)] if curve else None


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def headline(results: dict) -> dict[str, float | None]:
    """The figures a model is judged by (the default model card's bars among them), from one report."""
    rows = results["rows"]
    model, copy, truth = rows["model"], rows.get(COPY_LAST, {}), rows.get(GROUND_TRUTH, {})
    figures: dict[str, float | None] = {f"PSNR@{h}": model["psnr"].get(str(h)) for h in results["horizons"]}
    figures["PSNR@8 - copy-last"] = _minus(model["psnr"].get("8"), copy.get("psnr", {}).get("8"))
    figures["SSIM@8"] = model["ssim"].get("8")
    for name in ("keyboard", "mouse"):
        accuracy = model.get(f"{name}_accuracy")
        figures[f"{name} accuracy"] = accuracy
        figures[f"{name} / truth"] = _ratio(accuracy, truth.get(f"{name}_accuracy"))
    for group, response in (model.get("motion_response") or {}).items():  # older reports: none
        figures[f"motion {group}"] = response
    idle = results.get("long", {}).get("idle", {})
    ours, game = (idle.get(row, {}).get("curves", {}) for row in ("model", GROUND_TRUTH))
    for frame in IDLE_FRAMES:  # a still scene keeps its colours: brightness minus the game's
        figures[f"idle brightness - truth @{frame}"] = _minus(
            _at(ours.get("brightness"), frame), _at(game.get("brightness"), frame)
        )
    sharp, game_sharp = (_at(curves.get("sharpness"), 1000) for curves in (ours, game))
    figures["idle sharpness / truth @1000"] = _ratio(sharp, game_sharp)
    figures["idle PSNR @100"] = _at(ours.get("psnr"), 100)
    for kind, values in results.get("revisit", {}).items():
        figures[f"revisit {kind}"] = values.get("model")
    figures["frames/s"] = model.get("frames_per_second")
    return figures


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation (None for one run), min and max of the runs that have a value."""

    mean: float | None
    std: float | None
    low: float | None
    high: float | None
    count: int

    @classmethod
    def of(cls, values: list[float | None]) -> Summary:
        kept = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=float)
        if kept.size == 0:
            return cls(None, None, None, None, 0)
        std = float(kept.std(ddof=1)) if kept.size > 1 else None
        return cls(float(kept.mean()), std, float(kept.min()), float(kept.max()), int(kept.size))


def paired(groups: dict[str, list[Run]]) -> bool:
    """True when every group holds the same draws (protocol and noise seed) in the same order."""
    draws = [[run.draw for run in runs] for runs in groups.values()]
    return len(draws) > 1 and all(d == draws[0] for d in draws[1:])


def compare(groups: dict[str, list[Run]]) -> dict:
    """Per group and figure: a `Summary` over its runs; with paired runs, also of the run-by-run
    difference from the first group."""
    if not groups or any(not runs for runs in groups.values()):
        raise ValueError("compare needs at least one group, each with at least one report")
    figures = {name: [headline(run.results) for run in runs] for name, runs in groups.items()}
    names = list(dict.fromkeys(f for runs in figures.values() for one in runs for f in one))

    def column(group: str, figure: str) -> list[float | None]:
        return [one.get(figure) for one in figures[group]]

    summary = {g: {f: Summary.of(column(g, f)) for f in names} for g in groups}
    differences = {}
    if paired(groups):
        first = next(iter(groups))
        for group in list(groups)[1:]:
            differences[group] = {
                f: Summary.of([None if a is None or b is None else b - a
                               for a, b in zip(column(first, f), column(group, f), strict=True)])
                for f in names
            }
    return {
        "figures": names,
        "groups": {g: [str(run.path) for run in runs] for g, runs in groups.items()},
        "summary": summary,
        "paired": bool(differences),
        "differences": differences,
    }


def _number(figure: str, value: float, sign: bool = False) -> str:
    """Accuracies as percentages, SSIM with 3 decimals, the rest (dB, brightness, frames/s) with 2."""
    plus = "+" if sign else ""
    if "accuracy" in figure or "/ truth" in figure:
        return f"{100 * value:{plus}.1f}%"
    return f"{value:{plus}.{3 if figure.startswith('SSIM') else 2}f}"


def _cell(figure: str, summary: Summary, sign: bool = False) -> str:
    if summary.mean is None:
        return "not computed"
    text = _number(figure, summary.mean, sign)
    if summary.std is not None:
        spread = _number(figure, summary.std).rstrip("%")
        text += f" ± {spread} [{_number(figure, summary.low, sign)}, {_number(figure, summary.high, sign)}]"
    return text


def markdown(comparison: dict, command: str = "") -> str:
    """A table: a row per figure, a column per group (and per paired difference from the first)."""
    groups = list(comparison["groups"])
    counts = {g: len(paths) for g, paths in comparison["groups"].items()}
    header = [f"{g} ({counts[g]} runs)" for g in groups]
    header += [f"{g} - {groups[0]} (paired)" for g in comparison["differences"]]
    lines = ["# Comparison of eval.score reports", ""]
    if command:
        lines += ["```bash", command, "```", ""]
    lines += [
        "Mean ± sample standard deviation [min, max] over each group's runs.",
        "Paired differences: run by run, the same worlds and noise seed in both groups."
        if comparison["paired"]
        else "Not paired: the groups' runs do not share worlds and noise seeds in the same order.",
        "",
        "| figure | " + " | ".join(header) + " |",
        "|---|" + "---|" * len(header),
    ]
    for figure in comparison["figures"]:
        cells = [_cell(figure, comparison["summary"][g][figure]) for g in groups]
        cells += [_cell(figure, d[figure], sign=True) for d in comparison["differences"].values()]
        lines.append(f"| {figure} | " + " | ".join(cells) + " |")
    lines += ["", "Runs:", ""]
    lines += [f"- {g}: " + ", ".join(f"`{p}`" for p in paths) for g, paths in comparison["groups"].items()]
    return "\n".join(lines) + "\n"


def to_json(comparison: dict) -> dict:
    """The comparison with its summaries as plain dictionaries."""
    def plain(table: dict) -> dict:
        return {g: {f: asdict(s) for f, s in figures.items()} for g, figures in table.items()}

    return {
        **comparison,
        "summary": plain(comparison["summary"]),
        "differences": plain(comparison["differences"]),
    }
