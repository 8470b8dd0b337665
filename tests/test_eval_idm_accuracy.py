"""`python -m eval.idm_accuracy`: IDMs scored on every transition of held-out episodes (labels: the
actions as made); known answers of `reading_scores`; bad input named."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SMALL_IDM

from eval.idm_accuracy import main
from gameworld.data import find_episodes, open_episode
from gameworld.metrics.controls import (
    GROUPS,
    ControlLabels,
    actions_as_made,
    labels_from_actions,
    reading_scores,
)
from gameworld.models.idm import IDMEnsemble, InverseDynamicsModel
from gameworld.voxel.episodes import write_voxel_episode

FRAMES = 14


@pytest.fixture(scope="module")
def held_out(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("held_out")
    for i, biome in enumerate(("plains", "forest")):
        write_voxel_episode(root / "natural" / f"ep{i}", seed=40 + i, biome=biome, frames=FRAMES, width=64,
                            height=36, player_seed=i, lossless=True)
    return root


@pytest.fixture(scope="module")
def idms(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("idms")
    torch.manual_seed(0)
    members = [InverseDynamicsModel(**SMALL_IDM).eval(),
               InverseDynamicsModel(**SMALL_IDM, read_window=8).eval()]  # the second reads in windows
    members[0].save_pretrained(root / "single")
    IDMEnsemble(members).save_pretrained(root / "pair")
    return {"single": root / "single", "pair": root / "pair"}


def labels(frames: int, move: list[int], yaw: list[float]) -> ControlLabels:
    zeros = np.zeros(frames, np.int64)
    camera = np.stack([np.zeros(frames, np.float32), np.asarray(yaw, np.float32)], 1)
    return ControlLabels(move=np.asarray(move), strafe=zeros, jump=zeros, attack=zeros, camera_deg=camera)


def test_reading_scores_of_a_perfect_and_of_a_still_reader():
    truth = [labels(4, [0, 1, 1, 0], [0.0, 3.0, -0.5, -2.0]), labels(3, [0, 2, 0], [0.0, 0.0, 5.0])]
    perfect = reading_scores(truth, truth)
    assert all(perfect[name]["accuracy"] == 1.0 and perfect[name]["frames"] == 5 for name in GROUPS)
    still = [labels(4, [0] * 4, [0.0] * 4), labels(3, [0] * 3, [0.0] * 3)]
    scores = reading_scores(still, truth)  # frame 0 of each clip has no action: 5 transitions
    assert scores["move"]["accuracy"] == pytest.approx(2 / 5)  # moves 1, 1, 0 | 2, 0
    assert scores["move"]["balanced"] == pytest.approx(1 / 3)  # all of "none", nothing of the others
    assert scores["camera"]["accuracy"] == pytest.approx(2 / 5)  # yaw 3, -0.5, -2 | 0, 5: -0.5 is still
    assert scores["camera_directions"]["right"] == {"recall": 0.0, "frames": 2}
    assert sum(band["frames"] for band in scores["camera_by_margin"].values()) == 5


def test_the_cli_scores_every_transition_of_every_episode_with_each_idm(held_out, idms, tmp_path):
    out = tmp_path / "report"
    argv = ["--idm", str(idms["single"]), str(idms["pair"]), "--episodes", str(held_out), "--out", str(out)]
    assert main(argv) == 0
    report = json.loads((out / "idm_accuracy.json").read_text())
    assert report["episode_count"] == 2 and report["transitions"] == 2 * (FRAMES - 1)
    assert list(report["idms"]) == [str(idms["single"]), str(idms["pair"])]
    assert report["read_windows"] == {str(idms["single"]): [None], str(idms["pair"]): [None, 8]}
    assert report["command"].startswith("python -m eval.idm_accuracy --idm")

    idm = InverseDynamicsModel.from_pretrained(idms["single"]).eval()
    readings, truths = [], []
    for path in find_episodes(str(held_out)):
        episode = open_episode(path)
        readings.append(idm.predict(torch.from_numpy(episode.read_frames(0, len(episode)))[None])[0])
        truths.append(labels_from_actions(actions_as_made(episode.actions, episode.extras), episode.space))
    expected = json.loads(json.dumps(reading_scores(readings, truths)))
    assert report["idms"][str(idms["single"])] == expected
    assert report["idms"][str(idms["pair"])] != expected  # the pair reads with both members
    table = (out / "idm_accuracy.md").read_text()
    assert table.count(f"| `{idms['single']}` | whole |") == 1
    assert table.count(f"| `{idms['pair']}` | whole, 8-frame windows |") == 1
    accuracy = expected["move"]["accuracy"]
    assert f"{accuracy:.3f} / {expected['move']['balanced']:.3f}" in table


def test_bad_input_is_named(held_out, idms, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    argv = ["--idm", str(idms["single"]), "--episodes", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert capsys.readouterr().err == f"eval.idm_accuracy: {tmp_path / 'empty'}: no episodes found\n"
    argv = ["--idm", str(tmp_path / "nowhere"), "--episodes", str(held_out), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert str(tmp_path / "nowhere") in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written on an error
    # a one-frame episode: named, not an error from inside the IDM
    write_voxel_episode(tmp_path / "short" / "ep", seed=1, biome="plains", frames=1, width=32, height=18,
                        player_seed=1, lossless=True)
    argv = ["--idm", str(idms["single"]), "--episodes", str(tmp_path / "short"), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "frame(s), an IDM reads at least 2" in capsys.readouterr().err
