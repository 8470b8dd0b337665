"""`python -m eval.score` end to end on a tiny random model directory (short clips and rollouts)."""

import json
import shutil

import numpy as np

from eval import score
from eval.score import main
from gameworld.models.idm import InverseDynamicsModel

SMALL = ["--frames", "9", "--long-frames", "6", "--context", "2"]


def test_quick_protocol_writes_every_output(tmp_path, tiny_model_dir):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    InverseDynamicsModel(
        width=32, height=18, frame_channels=(8, 8, 8), pair_channels=(8, 8), hidden_size=16
    ).save_pretrained(model / "idm")
    out, export = tmp_path / "report", tmp_path / "export"
    argv = ["--model", str(model), "--out", str(out), "--export-gameworld", str(export), *SMALL]
    assert main([*argv, "--seed-base", "100050"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["protocol"]["seed_base"] == 100_050
    assert results["engine"]["temperature"] == 1.0 and results["engine"]["seed"] == 0  # how it was drawn
    rows = results["rows"]
    assert set(rows) == {"model", "copy-last-frame", "ground truth"}
    assert rows["ground truth"]["psnr"]["1"] == 100.0 and rows["ground truth"]["ssim"]["1"] == 1.0
    assert rows["model"]["lpips"]["1"] is None and rows["model"]["fvd"] is None  # no weights: not computed
    assert rows["model"]["keyboard_accuracy"] is not None and len(rows["model"]["per_action"]) == 16
    assert rows["model"]["psnr"]["64"] is None  # beyond these 9-frame clips
    per_clip = rows["copy-last-frame"]["clip_psnr"]
    assert len(per_clip) == 16 and per_clip["mushroom_0_empty"]["8"] == 100.0  # nothing moves: exact
    at_8 = np.array([clip["8"] for clip in per_clip.values()])
    pooled = -10 * np.log10(np.mean(10 ** (-at_8 / 10)))  # PSNR of the mean squared error
    assert np.isclose(rows["copy-last-frame"]["psnr"]["8"], pooled, rtol=1e-6)
    assert pooled < at_8.mean() - 3.0  # a mean of dB would count the exact clip as 100 dB
    markdown = (out / "results.md").read_text()
    assert "not computed" in markdown and "python -m eval.score" in markdown
    assert "PSNR@8 per clip" in markdown and "| mushroom_0_empty |" in markdown
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


def test_steps_guidance_and_temperature_reach_the_models_engine(tmp_path, tiny_model_dir, monkeypatch):
    built = []

    def capture(path, **settings):
        built.append((str(path), settings))
        raise ValueError("stop here")  # reported as a clear error, after the engines are set up

    monkeypatch.setattr(score.WorldEngine, "from_pretrained", capture)
    argv = ["--model", str(tiny_model_dir), "--out", str(tmp_path / "o"), "--steps", "1", "--guidance", "2.5",
            "--temperature", "0.8"]
    assert main(argv) == 2
    assert built == [(str(tiny_model_dir), {"device": "cpu", "seed": 0, "steps": 1, "guidance": 2.5,
                                             "temperature": 0.8})]
    built.clear()
    assert main(["--model", str(tiny_model_dir), "--out", str(tmp_path / "o")]) == 2
    assert built == [(str(tiny_model_dir), {"device": "cpu", "seed": 0})]  # the model's own settings
