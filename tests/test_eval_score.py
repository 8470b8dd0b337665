"""`python -m eval.score` end to end on a tiny random model directory (short clips and rollouts)."""

import json
import shutil

from eval.score import main
from gameworld.models.idm import InverseDynamicsModel

SMALL = ["--frames", "5", "--long-frames", "6", "--context", "2"]


def test_quick_protocol_writes_every_output(tmp_path, tiny_model_dir):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    InverseDynamicsModel(
        width=32, height=18, frame_channels=(8, 8, 8), pair_channels=(8, 8), hidden_size=16
    ).save_pretrained(model / "idm")
    out, export = tmp_path / "report", tmp_path / "export"
    assert main(["--model", str(model), "--out", str(out), "--export-gameworld", str(export), *SMALL]) == 0
    results = json.loads((out / "results.json").read_text())
    rows = results["rows"]
    assert set(rows) == {"model", "copy-last-frame", "ground truth"}
    assert rows["ground truth"]["psnr"]["1"] == 100.0 and rows["ground truth"]["ssim"]["1"] == 1.0
    assert rows["model"]["lpips"]["1"] is None and rows["model"]["fvd"] is None  # no weights: not computed
    assert rows["model"]["keyboard_accuracy"] is not None and len(rows["model"]["per_action"]) == 16
    assert rows["model"]["psnr"]["64"] is None  # beyond these 5-frame clips
    markdown = (out / "results.md").read_text()
    assert "not computed" in markdown and "python -m eval.score" in markdown
    for name in (
        "grid.mp4",
        "psnr_vs_horizon.png",
        "per_action_keyboard_accuracy.png",
        "long_idle_sharpness.png",
    ):
        assert (out / name).stat().st_size > 0
    assert sorted(p.name for p in export.glob("*.mp4"))[0] == "0000_attack.mp4"
    assert len(list(export.glob("*.mp4"))) == 16


def test_missing_model_and_idm_are_clear_errors(tmp_path, tiny_model_dir, capsys):
    assert main(["--model", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert "not a model directory" in capsys.readouterr().err
    assert main(["--model", str(tiny_model_dir), "--idm", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no IDM here" in capsys.readouterr().err
