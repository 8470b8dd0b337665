"""`python -m eval.score` end to end on a tiny random model directory (short clips and rollouts)."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from eval import score
from eval.score import main
from gameworld.actions import Action, ActionSpace
from gameworld.data import write_episode
from gameworld.metrics.evaluate import (
    COPY_LAST,
    MOVED_LAST,
    Scorers,
    copy_last_generator,
    evaluate,
    moved_last_generator,
)
from gameworld.metrics.motion import apply_motion
from gameworld.metrics.protocol import Protocol
from gameworld.models.idm import InverseDynamicsModel
from gameworld.motion_prior import MotionPrior, feature_names

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
    assert results["computed"]["consistency_features"] == "idm"
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
    for group in ("walk", "strafe", "turn sideways", "turn up/down"):  # the game moves in each
        assert rows["ground truth"]["motion_response"][group] == pytest.approx(1.0)
        assert rows["copy-last-frame"]["motion_response"][group] == pytest.approx(0.0, abs=1e-5)  # still
        assert rows["model"]["motion_response"][group] is not None
    walk = rows["ground truth"]["motion_per_action"]["forward"]
    assert walk["walk"] == pytest.approx(1.0) and walk["turn sideways"] is None  # it asks no turn
    markdown = (out / "results.md").read_text()
    assert "not computed" in markdown and "python -m eval.score" in markdown
    assert "PSNR@8 per clip" in markdown and "| mushroom_0_empty |" in markdown
    assert "| copy-last-frame | 0.00 | 0.00 | 0.00 | 0.00 |" in markdown  # the motion response
    for name in (
        "grid.mp4",
        "psnr_vs_horizon.png",
        "per_action_keyboard_accuracy.png",
        "per_action_motion_response.png",
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


def test_sampler_settings_reach_the_models_engine(tmp_path, tiny_model_dir, monkeypatch):
    built = []

    def capture(path, **settings):
        built.append((str(path), settings))
        raise ValueError("stop here")  # reported as a clear error, after the engines are set up

    monkeypatch.setattr(score.WorldEngine, "from_pretrained", capture)
    argv = ["--model", str(tiny_model_dir), "--out", str(tmp_path / "o"), "--steps", "1", "--guidance", "2.5",
            "--temperature", "0.8", "--context-noise", "0.1"]
    assert main(argv) == 2
    assert built == [(str(tiny_model_dir), {"device": "cpu", "seed": 0, "steps": 1, "guidance": 2.5,
                                             "temperature": 0.8, "context_noise": 0.1})]
    built.clear()
    assert main(["--model", str(tiny_model_dir), "--out", str(tmp_path / "o")]) == 2
    assert built == [(str(tiny_model_dir), {"device": "cpu", "seed": 0})]  # the model's own settings
    for given, setting in (("0.4", 0.4), ("off", None)):
        built.clear()
        argv = ["--model", str(tiny_model_dir), "--out", str(tmp_path / "o"), "--motion-prior", given]
        assert main(argv) == 2
        assert built == [(str(tiny_model_dir), {"device": "cpu", "seed": 0, "motion_prior": setting})]


def test_a_model_sampled_with_its_motion_prior_is_scored_beside_the_prior_alone(tmp_path, tiny_model_dir):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    names = feature_names(ActionSpace.minecraft())
    prior = MotionPrior(names, tuple((0.0, -0.02 * (name == "dyaw"), 0.0) for name in names))
    prior.save(model)
    assert main(["--model", str(model), "--out", str(tmp_path / "off"), *SMALL]) == 0
    rows = json.loads((tmp_path / "off" / "results.json").read_text())["rows"]
    assert MOVED_LAST not in rows  # the model's own setting: no prior
    assert main(["--model", str(model), "--out", str(tmp_path / "on"), "--motion-prior", "0.5", *SMALL]) == 0
    results = json.loads((tmp_path / "on" / "results.json").read_text())
    assert results["engine"]["start_level"] == 0.5 and MOVED_LAST in results["rows"]
    assert "| moved-last-frame |" in (tmp_path / "on" / "results.md").read_text()


def test_the_prior_alone_moves_the_last_frame_once_per_action(make_frames):
    """A degree of yaw pans by 2% of the width; a jump by 1% of the height, 0.32 px: under the half
    pixel the engine takes for a still view, so the prior alone leaves that frame as it is too."""
    names = feature_names(ActionSpace.minecraft())
    weights = {"dyaw": (0.0, -0.02, 0.0), "jump": (0.0, 0.0, 0.01)}
    prior = MotionPrior(names, tuple(weights.get(name, (0.0, 0.0, 0.0)) for name in names))
    context = make_frames(2, height=32, width=64)
    actions = [Action.null(), Action.of(camera=(0, 3)), Action.of("jump"), Action.of(camera=(0, -3))]
    frames = moved_last_generator(prior)(context, [Action.null()] * 2, actions)
    assert frames.shape == (4, 32, 64, 3) and np.array_equal(frames[0], context[-1])
    assert np.array_equal(frames[2], frames[1])  # a still input holds the view
    assert not np.array_equal(apply_motion(frames[1], np.array([0.0, 0.0, 0.01])), frames[1])
    np.testing.assert_array_equal(frames[1], apply_motion(context[-1], np.array([0.0, -0.06, 0.0])))
    np.testing.assert_array_equal(frames[3], apply_motion(frames[2], np.array([0.0, 0.06, 0.0])))


def test_clips_start_from_user_files_and_what_needs_no_truth_is_scored(
    tmp_path, tiny_model_dir, make_frames, capsys
):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    InverseDynamicsModel(
        width=32, height=18, frame_channels=(8, 8, 8), pair_channels=(8, 8), hidden_size=16
    ).save_pretrained(model / "idm")
    frames = make_frames(4, height=64, width=128)
    Image.fromarray(frames[0]).save(tmp_path / "shot.png")
    episode = write_episode(tmp_path / "real" / "ep", frames, [Action.null()] + [Action.of("left")] * 3)
    out = tmp_path / "report"
    starts = [str(tmp_path / "shot.png"), str(episode)]
    argv = ["--model", str(model), "--out", str(out), "--start-from", *starts]
    assert main([*argv, *SMALL]) == 0
    results = json.loads((out / "results.json").read_text())
    rows = results["rows"]
    assert set(rows) == {"model", "copy-last-frame"}  # no ground truth row
    for row in rows.values():
        assert set(row["psnr"].values()) == {None} and row["fvd"] is None and row["clip_psnr"] == {}
        assert row["mouse_accuracy"] is None and row["camera_error_deg"] is None  # no poses
        assert row["motion_response"] is None  # no game's motion to compare with
        assert 0 <= row["keyboard_accuracy"] <= 1 and 0 <= row["mouse_accuracy_asked"] <= 1
    idle = results["long"]["idle"]
    assert set(idle) == {"model", "copy-last-frame"} and len(idle["model"]["curves"]["brightness"]) == 6
    assert idle["model"]["marks"] == [1, 5]  # frames 1 and 10 and 100 and 1000 of a 6-frame rollout
    assert idle["model"]["curves"]["psnr"] is None and set(idle["model"]["psnr"]) == {None}
    assert results["revisit"]["turn"]["copy-last-frame"] == 100.0  # its frames never change
    markdown = (out / "results.md").read_text()
    assert "starts from 2 user file(s)" in markdown and "No ground truth" in markdown
    assert (out / "per_action_mouse_accuracy_asked.png").is_file()
    assert not (out / "psnr_vs_horizon.png").exists()  # nothing to plot

    assert main([*argv[:-1], str(tmp_path / "missing.mp4"), *SMALL]) == 2  # checked before any clip
    assert "missing.mp4: no such video or episode" in capsys.readouterr().err


def test_user_starts_hand_the_users_frames_to_every_generator(tmp_path, make_frames):
    Image.fromarray(make_frames(1, height=36, width=64)[0]).save(tmp_path / "shot.png")
    protocol = Protocol("quick", width=32, height=18, frames=4, context=2, long_frames=5,
                        starts_from=(str(tmp_path / "shot.png"),))
    seen = []

    def model(context, context_actions, actions):
        seen.append((context.copy(), list(context_actions)))
        return copy_last_generator(context, context_actions, actions)

    results, kept = evaluate(protocol, {"model": model, COPY_LAST: copy_last_generator}, Scorers())
    start, start_actions = protocol.user_start(0)
    assert len(seen) == 16 + 2 + 2  # the clips, the idle and walking rollouts, the two revisits
    assert all(np.array_equal(context, start) and actions == start_actions for context, actions in seen)
    assert results["rows"]["model"]["clips"] == 16 and set(kept) == {"model", COPY_LAST}


class ConstantEncoder(torch.nn.Module):
    """An image encoder that sees every frame alike: its cosines are exactly 1."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.ones(images.shape[0], 4)


def test_a_users_image_encoder_reads_the_feature_cosines(tmp_path, tiny_model_dir):
    encoder = tmp_path / "encoder.pt"
    torch.jit.script(ConstantEncoder()).save(str(encoder))
    out = tmp_path / "report"
    argv = ["--model", str(tiny_model_dir), "--out", str(out), "--encoder", str(encoder)]
    assert main([*argv, "--encoder-resolution", "8", *SMALL]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["computed"]["consistency_features"] == "encoder" and not results["computed"]["controls"]
    for row in results["rows"].values():  # no IDM here: cosines from the encoder, no controllability
        assert row["cosine_consecutive"] == 1.0 and row["cosine_to_first"] == 1.0
        assert row["keyboard_accuracy"] is None
    assert "read the image encoder given (`--encoder`)" in (out / "results.md").read_text()
