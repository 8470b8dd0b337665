"""How well IDMs read held-out episodes: accuracy per key group and camera direction.

    python -m eval.idm_accuracy --idm gameworld/pretrained/default/idm --episodes data/idm_val \\
        --out eval/results/idm_held_out/natural

Every episode under `--episodes` is read by each `--idm` (an IDM directory of one IDM or of an
ensemble) as one clip, in windows where the IDM has a `read_window`, and scored on all its
transitions against the keys held and the camera turns its recorded poses show (`actions_as_made`;
episodes without poses: the turns asked for): accuracy and balanced accuracy of forward/back,
left/right, jump, attack and the camera's 9 classes, the recall of each camera direction, and the
camera's accuracy by the turn's distance from the dead zone's edge. Writes `idm_accuracy.json`
and `idm_accuracy.md` to `--out` and prints the table. The training job's own report
(`held_out_accuracy.json`) reads only `validation.clips` clips.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from gameworld.atomic import write_text_atomic
from gameworld.data import find_episodes, open_episode
from gameworld.metrics.controls import (
    GROUPS,
    ControlLabels,
    actions_as_made,
    labels_from_actions,
    reading_scores,
)
from gameworld.metrics.report import command_line, write_json_report
from gameworld.models.idm import IDMEnsemble, InverseDynamicsModel, load_idm

GROUP_TITLES = {"move": "forward/back", "strafe": "left/right", "jump": "jump", "attack": "attack",
                "camera": "camera"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--idm", nargs="+", required=True, help="IDM directories to score")
    parser.add_argument("--episodes", required=True, help="folder of held-out episodes (searched below)")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    return parser.parse_args(argv)


def read_episode(path: Path) -> tuple[np.ndarray, ControlLabels]:
    """An episode's frames uint8 [T, H, W, 3] and the labels of its actions as made."""
    episode = open_episode(path)
    if len(episode) < 2:
        raise ValueError(f"{path}: {len(episode)} frame(s), an IDM reads at least 2")
    labels = labels_from_actions(actions_as_made(episode.actions, episode.extras), episode.space)
    return episode.read_frames(0, len(episode)), labels


def read_windows_of(idm: InverseDynamicsModel | IDMEnsemble) -> list[int | None]:
    """The `read_window` of each IDM read (an ensemble's members; None: clips read whole)."""
    members = idm.members if isinstance(idm, IDMEnsemble) else [idm]
    return [member.config.read_window for member in members]


def score(idm_dirs: list[str], source: str) -> dict:
    """{"episodes", "episode_count", "transitions", "read_windows": {dir: `read_windows_of`},
    "idms": {dir: `reading_scores`}}; each episode is decoded once and read by every IDM."""
    paths = find_episodes(source)
    if not paths:
        raise FileNotFoundError(f"{source}: no episodes found")
    idms = {path: load_idm(path).eval() for path in idm_dirs}
    readings: dict[str, list[ControlLabels]] = {path: [] for path in idm_dirs}
    targets = []
    for episode in tqdm(paths, desc="reading episodes", unit="episode"):
        frames, labels = read_episode(episode)
        targets.append(labels)
        for path, idm in idms.items():
            readings[path].append(idm.predict(torch.from_numpy(frames)[None])[0])
    scores = {path: reading_scores(readings[path], targets) for path in idm_dirs}
    transitions = sum(len(labels.move) - 1 for labels in targets)
    windows = {path: read_windows_of(idm) for path, idm in idms.items()}
    return {"episodes": source, "episode_count": len(targets), "transitions": transitions,
            "read_windows": windows, "idms": scores}


def markdown(report: dict, command: str) -> str:
    """The report as a Markdown table: per IDM, accuracy / balanced accuracy per group."""
    margins = list(next(iter(report["idms"].values()))["camera_by_margin"])
    head = ["IDM", "read", *(GROUP_TITLES[name] for name in GROUPS)]
    head += [f"camera, {margin} deg from the edge" for margin in margins]
    lines = [
        f"# IDM accuracy on held-out episodes ({report['episodes']})",
        "",
        f"`{command}`",
        "",
        f"{report['episode_count']} episodes, {report['transitions']} transitions; each cell: accuracy / "
        "balanced accuracy; by margin: the camera's accuracy where the true turn lies that far from the "
        "dead zone's edge (frames).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for path, scores in report["idms"].items():
        cells = [f"{scores[name]['accuracy']:.3f} / {scores[name]['balanced']:.3f}" for name in GROUPS]
        for band in scores["camera_by_margin"].values():
            cells.append("-" if band["accuracy"] is None else f"{band['accuracy']:.3f} ({band['frames']})")
        windows = dict.fromkeys(report["read_windows"][path])  # each member's, once, in order
        read = ", ".join("whole" if w is None else f"{w}-frame windows" for w in windows)
        lines.append(f"| `{path}` | {read} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = command_line("eval.idm_accuracy", argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        report = score(args.idm, args.episodes)
    except (FileNotFoundError, ValueError) as err:
        print(f"eval.idm_accuracy: {err}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(report, command)
    write_text_atomic(args.out / "idm_accuracy.md", text)
    write_json_report(args.out / "idm_accuracy.json", {"command": command, **report})
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
