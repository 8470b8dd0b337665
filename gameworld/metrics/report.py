"""What `eval.score` writes: results.json, results.md, PNG plots, an mp4 grid, the official layout.

Plots are drawn with PIL (no plotting library needed): line charts of a metric over the horizon
and bar charts of per-action accuracy.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from gameworld.atomic import staged, write_text_atomic
from gameworld.data.video import write_video
from gameworld.metrics.evaluate import finite_or_none
from gameworld.metrics.motion import MOTION_GROUPS

COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
NOT_COMPUTED = "not computed"
CLIP_TABLE_MAX = 32  # reports of more clips keep the per-clip PSNR in results.json only


def _fmt(value, digits: int = 2, percent: bool = False) -> str:
    if value is None:
        return NOT_COMPUTED
    text = f"{100 * value:.1f}%" if percent else f"{value:.{digits}f}"
    return text.removeprefix("-") if text.strip("-0.%") == "" else text  # no "-0.00" for a tiny negative


def markdown(results: dict, command: str = "") -> str:
    """The report as Markdown tables (metrics that were not computed say so)."""
    rows, horizons = results["rows"], results["horizons"]
    p = results["protocol"]
    lines = [f"# GameWorld Score ({p['name']} protocol)", ""]
    if command:
        lines += ["```bash", command, "```", ""]
    user_starts = p.get("starts_from") or []
    starts = (
        f"starts from {len(user_starts)} user file(s) ({', '.join(user_starts)})"
        if user_starts
        else f"world seeds from {p['seed_base']}"
    )
    lines += [
        f"{rows[next(iter(rows))]['clips']} clips of {p['frames']} frames at {p['width']}x{p['height']}, "
        f"{p['context']} context frames, {starts}; {results['seconds']:.0f} s in all.",
        "",
        "## Against the ground truth",
        "",
        "No ground truth: the clips start from user files, which no game replays; the metrics that "
        "need it are not computed, and the mouse is read against the turns asked."
        if user_starts
        else "PSNR at frame h: of the squared error pooled over the clips (a clip equal to the truth "
        "adds an error of 0, not an arbitrary dB value).",
        "",
    ]
    head = ["row", *[f"PSNR@{h}" for h in horizons], *[f"SSIM@{h}" for h in horizons], "LPIPS@16", "FVD"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in rows.items():
        cells = [
            name,
            *[_fmt(row["psnr"][str(h)]) for h in horizons],
            *[_fmt(row["ssim"][str(h)], 3) for h in horizons],
            _fmt(row["lpips"]["16"], 3),
            _fmt(row["fvd"], 1),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    clip_psnr = {name: row["clip_psnr"] for name, row in rows.items() if name != "ground truth"}
    keys = list(next(iter(clip_psnr.values())))
    reaches_8 = any(per[key].get("8") is not None for per in clip_psnr.values() for key in keys)
    if reaches_8 and len(keys) <= CLIP_TABLE_MAX:
        lines += ["", "## PSNR@8 per clip (dB; 100: equal to the truth)", ""]
        lines += ["| clip | " + " | ".join(clip_psnr) + " |", "|" + "---|" * (len(clip_psnr) + 1)]
        for key in keys:
            lines.append(f"| {key} | " + " | ".join(_fmt(per[key]["8"]) for per in clip_psnr.values()) + " |")
    lines += ["", "## Controllability (IDM) and consistency", ""]
    lines += ["Mouse: the IDM's reading against the turns the game made; mouse (asked): against the",
              "turns asked for, as GameWorld Score reads them. They differ where the pitch stops at +-90",
              "degrees.", ""]
    source = results.get("computed", {}).get("consistency_features")
    if source:
        network = "the image encoder given (`--encoder`)" if source == "encoder" else "the IDM's encoder"
        lines += [f"Feature cosines (cos consecutive, cos to first) read {network}.", ""]
    head = [
        "row",
        "keyboard",
        "mouse",
        "mouse (asked)",
        "move",
        "strafe",
        "jump",
        "attack",
        "camera err pitch/yaw (deg)",
        "cos consecutive",
        "cos to first",
        "frames/s",
    ]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in rows.items():
        groups = row["groups"] or {}
        err = row["camera_error_deg"]
        cells = [
            name,
            _fmt(row["keyboard_accuracy"], percent=True),
            _fmt(row["mouse_accuracy"], percent=True),
            _fmt(row["mouse_accuracy_asked"], percent=True),
            *[
                _fmt(groups[g]["accuracy"], percent=True) if groups else NOT_COMPUTED
                for g in ("move", "strafe", "jump", "attack")
            ],
            NOT_COMPUTED if err is None else f"{err['pitch']:.1f} / {err['yaw']:.1f}",
            _fmt(row["cosine_consecutive"], 3),
            _fmt(row["cosine_to_first"], 3),
            _fmt(row["frames_per_second"], 1),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += _motion_table(rows)
    for kind, table in results["long"].items():
        marks = next(iter(table.values()))["marks"]
        lines += [
            "",
            f"## {p['long_frames']}-frame {kind} rollout (brightness, sharpness"
            f"{'' if user_starts else ', PSNR'} at frame)",
            "",
        ]
        head = ["row", *[f"frame {m}" for m in marks]]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for name, row in table.items():
            cells = [
                f"{np.mean(c):.0f}, {s:.0f}" + ("" if q is None else f", {q:.1f} dB")
                for c, s, q in zip(row["mean_colour"], row["sharpness"], row["psnr"], strict=True)
            ]
            lines.append("| " + " | ".join([name, *cells]) + " |")
    lines += ["", "## Scene revisit: PSNR between the frame before and after (dB)", ""]
    revisit = results["revisit"]
    names = list(next(iter(revisit.values())))
    lines += ["| test | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for kind, values in revisit.items():
        lines.append(f"| {kind} | " + " | ".join(_fmt(values[n]) for n in names) + " |")
    lines += ["", "Metric definitions: `eval/README.md`.", ""]
    return "\n".join(lines)


def line_plot(path: Path, title: str, curves: dict[str, Sequence[float]], size=(640, 400)) -> None:
    """A PNG line chart of several curves over the frame index."""
    width, height = size
    left, right, top, bottom = 50, 150, 30, 30
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    values = [v for c in curves.values() for v in c if v is not None and np.isfinite(v)]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    high = high if high > low else low + 1.0
    length = max(len(c) for c in curves.values())
    x = lambda i: left + (width - left - right) * i / max(1, length - 1)  # noqa: E731
    y = lambda v: top + (height - top - bottom) * (1 - (v - low) / (high - low))  # noqa: E731
    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    draw.text((left, 8), title, fill="black")
    draw.text((4, top), f"{high:.3g}", fill="black")
    draw.text((4, height - bottom - 10), f"{low:.3g}", fill="black")
    draw.text((left, height - bottom + 6), "0", fill="black")
    draw.text((width - right - 20, height - bottom + 6), str(length - 1), fill="black")
    for k, (name, curve) in enumerate(curves.items()):
        colour = COLOURS[k % len(COLOURS)]
        points = [(x(i), y(v)) for i, v in enumerate(curve) if v is not None and np.isfinite(v)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        draw.text((width - right + 8, top + 16 * k), name, fill=colour)
    with staged(path) as tmp:
        image.save(tmp, format="PNG")


def bar_plot(
    path: Path, title: str, bars: dict[str, dict[str, float]], size=(900, 420), span=(0.0, 1.0)
) -> None:
    """A PNG grouped bar chart: one group per action, one bar per row, from 0 to the value (clipped to
    `span`, which the y axis covers)."""
    width, height = size
    left, top, bottom = 40, 40, 110
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.text((left, 8), title, fill="black")
    rows = list(bars)
    actions = list(dict.fromkeys(a for r in bars.values() for a in r))
    slot = (width - left - 10) / max(1, len(actions))
    bar = slot / (len(rows) + 1)
    base = height - bottom
    low, high = span
    y = lambda value: base - (base - top) * (min(max(value, low), high) - low) / (high - low)  # noqa: E731
    draw.line([left, base, width - 10, base], fill="black")
    if low < 0:
        draw.line([left, y(0.0), width - 10, y(0.0)], fill="grey")
        draw.text((4, y(0.0) - 6), "0", fill="black")
    for j, action in enumerate(actions):
        for k, row in enumerate(rows):
            value = bars[row].get(action)
            if value is None or not np.isfinite(value):
                continue
            x0 = left + j * slot + k * bar
            ends = sorted((y(value), y(max(low, 0.0))))
            draw.rectangle([x0, ends[0], x0 + bar - 1, ends[1]], fill=COLOURS[k % len(COLOURS)])
        label = Image.new("RGB", (bottom - 4, 12), "white")
        ImageDraw.Draw(label).text((0, 0), action, fill="black")
        image.paste(label.rotate(90, expand=True), (int(left + j * slot), base + 4))
    for k, row in enumerate(rows):
        draw.text((width - 200, 8 + 12 * k), row, fill=COLOURS[k % len(COLOURS)])
    with staged(path) as tmp:
        image.save(tmp, format="PNG")


def write_mp4(path: Path, frames, fps: float) -> None:
    """An mp4 written under a temporary name (with the .mp4 suffix the encoder needs), then renamed."""
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.mp4")
    try:
        write_video(tmp, frames, fps)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def video_grid(path: Path, kept: dict[str, list[np.ndarray]], fps: float = 20.0) -> None:
    """One mp4: a column per clip, a row per generator (ground truth included), labelled by order."""
    rows = list(kept)
    count = min(len(v) for v in kept.values())
    length = min(len(c) for v in kept.values() for c in v[:count])
    grid = np.concatenate(
        [np.concatenate([kept[r][i][:length] for i in range(count)], axis=2) for r in rows], axis=1
    )  # [T, rows*H, count*W, 3]
    h, w = grid.shape[1:3]
    write_mp4(path, grid[:, : h - h % 2, : w - w % 2], fps)


def gameworld_names(clips: Sequence) -> dict[str, str]:
    """clip key -> file name in the official GameWorldScore layout: `<index:04d>_<action>.mp4`,
    the same action grouped together (actions sorted by name, starts in protocol order)."""
    names = {}
    for clip in sorted(clips, key=lambda c: c.name):  # stable: protocol order within an action
        names[clip.key] = f"{len(names):04d}_{clip.name}.mp4"
    return names


def _motion_table(rows: dict) -> list[str]:
    """The motion response table (no rows: the protocol had no ground truth to compare with)."""
    scored = {name: row["motion_response"] for name, row in rows.items() if row.get("motion_response")}
    if not scored:
        return []
    lines = ["", "## Motion response (from the pixels, no network)", "",
             "How far the view zooms (walk) and pans (strafe, turns) where each is asked for, as a share",
             "of the game's motion over the same frames: 1 moves as the game does, 0 stands still, below 0",
             "moves the wrong way (`gameworld/metrics/motion.py`).", ""]
    head = ["row", *MOTION_GROUPS]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, response in scored.items():
        lines.append("| " + " | ".join([name, *(_fmt(response[g]) for g in MOTION_GROUPS)]) + " |")
    return lines


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """The command that made a report: `python -m module` and its arguments (`argv`, else the process's)."""
    return f"python -m {module} " + shlex.join(sys.argv[1:] if argv is None else argv)


def write_json_report(path: Path, report: dict) -> None:
    """`report` as indented JSON at `path`, written atomically; NaN and infinities become null."""
    write_text_atomic(path, json.dumps(finite_or_none(report), indent=1) + "\n")


def write_report(out: Path, results: dict, kept: dict[str, list[np.ndarray]], command: str = "") -> None:
    """results.json, results.md, the PNG plots and grid.mp4 in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    write_json_report(out / "results.json", results)
    write_text_atomic(out / "results.md", markdown(results, command))
    rows = results["rows"]
    for metric, title in (("psnr", "PSNR to ground truth (dB)"), ("ssim", "SSIM to ground truth")):
        curves = {n: r["curves"][metric] for n, r in rows.items() if n != "ground truth"}
        _plot_curves(out / f"{metric}_vs_horizon.png", f"{title} vs frame", curves, skip_first=True)
    user_starts = bool(results["protocol"].get("starts_from"))
    for metric in ("keyboard_accuracy", "mouse_accuracy_asked" if user_starts else "mouse_accuracy"):
        bars = {
            n: {a: v[metric] for a, v in r["per_action"].items()} for n, r in rows.items() if r["per_action"]
        }
        if bars:
            bar_plot(out / f"per_action_{metric}.png", f"{metric.replace('_', ' ')} per action (IDM)", bars)
    motion = {n: _asked_motion(r["motion_per_action"]) for n, r in rows.items() if r.get("motion_per_action")}
    if motion:
        title = "motion response per action (1: moves as the game, 0: still)"
        bar_plot(out / "per_action_motion_response.png", title, motion, span=(-0.5, 1.2))
    for kind, table in results["long"].items():
        for metric in ("brightness", "sharpness", "psnr"):
            curves = {n: r["curves"][metric] for n, r in table.items()}
            _plot_curves(out / f"long_{kind}_{metric}.png", f"{kind} rollout: {metric} vs frame", curves)
    video_grid(out / "grid.mp4", kept)


def _asked_motion(per_action: dict[str, dict]) -> dict[str, float]:
    """Per action, the motion response of the first group it asks for (actions that ask none: left out)."""
    picked = {action: [v for v in groups.values() if v is not None] for action, groups in per_action.items()}
    return {action: values[0] for action, values in picked.items() if values}


def _plot_curves(path: Path, title: str, curves: dict, skip_first: bool = False) -> None:
    """`line_plot` of the curves that were computed (none: no plot); `skip_first` drops frame 0."""
    computed = {name: curve[1 if skip_first else 0:] for name, curve in curves.items() if curve is not None}
    if computed:
        line_plot(path, title, computed)
