"""The motion probe: its cases, known answers through the plumbing, what a t = 1 estimate can see, the CLI."""

import json

import numpy as np
import pytest

from eval.motion_probe import main
from gameworld.actions import Action
from gameworld.metrics.image import psnr
from gameworld.metrics.motion import COMPONENTS, ego_motion
from gameworld.metrics.motion_probe import (
    CONTEXTS,
    PROBE_INPUTS,
    moved_last_frame,
    probe_cases,
    run_probe,
    x0_predictor,
)
from gameworld.modeldir import load_model_dir


@pytest.fixture(scope="module")
def cases():
    return probe_cases(width=128, height=72, context_frames=3, worlds=2)


def test_every_input_follows_a_still_and_a_moving_context_in_every_world(cases):
    assert len(cases) == 2 * len(PROBE_INPUTS) * len(CONTEXTS)
    assert {case.seed for case in cases} == {100_000, 100_100}
    for case in cases:
        action = PROBE_INPUTS[case.name][0]
        assert case.frames.shape == (4, 72, 128, 3) and case.actions[0] == Action.null()
        assert case.actions[-1] == action
        before = action if case.context == "moving" else Action.null()
        assert case.actions[1:-1] == (before, before)
    with pytest.raises(ValueError, match="context_frames, worlds >= 1"):
        probe_cases(128, 72, context_frames=0)


def test_the_games_own_next_frame_moves_as_the_game_and_a_copy_stands_still(cases):
    results = run_probe(cases, {
        "oracle": lambda frames, actions: frames[-1],
        "copy": lambda frames, actions: frames[-2],
    })
    for context in CONTEXTS:
        for name in PROBE_INPUTS:
            assert results["oracle"][context][name] == pytest.approx(1.0)
            assert results["copy"][context][name] == pytest.approx(0.0, abs=1e-4)


def test_the_moved_last_frame_is_the_games_next_as_far_as_a_camera_can_say(cases):
    for case in cases:
        if case.name in ("turn left", "look down"):
            moved, (before, after) = moved_last_frame(case.frames), case.frames[-2:]
            assert psnr(moved, after) > psnr(before, after) + 1.5  # clearly closer than holding the view
            axis = COMPONENTS.index(PROBE_INPUTS[case.name][1])  # the pan this input asks for
            assert ego_motion(np.stack([before, moved]))[0, axis] == pytest.approx(
                ego_motion(case.frames[-2:])[0, axis], rel=0.05)


def test_an_estimate_from_pure_noise_cannot_see_the_true_next_frame(tiny_model_dir):
    config, tokenizer, model = load_model_dir(tiny_model_dir, "cpu")
    frames = np.random.default_rng(0).integers(0, 256, (4, 32, 64, 3), dtype=np.uint8)
    other = frames.copy()
    other[-1] = 255 - other[-1]  # another "true" next frame
    actions = [Action.null(), Action.null(), Action.null(), Action.of("forward")]

    def estimate(level: float, clip: np.ndarray) -> np.ndarray:
        return x0_predictor(tokenizer, model, config.space, level, seed=3)(clip, actions)

    np.testing.assert_array_equal(estimate(1.0, frames), estimate(1.0, other))
    assert np.abs(estimate(0.6, frames).astype(int) - estimate(0.6, other)).mean() > 1.0
    assert np.any(estimate(1.0, frames) != x0_predictor(tokenizer, model, config.space, 1.0)(
        frames, [*actions[:-1], Action.of("back")]))  # the action reaches the model
    with pytest.raises(ValueError, match=r"noise level must be in \(0, 1\]"):
        x0_predictor(tokenizer, model, config.space, 0.0)


def test_the_command_writes_its_tables_and_refuses_a_missing_model(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "probe"
    assert main(["--model", str(tiny_model_dir), "--out", str(out), "--worlds", "1", "--levels", "1"]) == 0
    report = json.loads((out / "motion_probe.json").read_text())
    assert set(report["response"]) == {"x0 @ t=1", "moved @ t=0.6", "sampled"}
    assert set(report["response"]["sampled"]) == set(CONTEXTS)
    assert set(report["response"]["sampled"]["still"]) == set(PROBE_INPUTS)
    assert report["context_frames"] == 5  # the model's 6-frame window, less the frame probed
    text = (out / "motion_probe.md").read_text()
    assert "## Context: moving" in text and "| walk forward |" in text
    assert "python -m eval.motion_probe" in text
    assert main(["--model", str(tmp_path / "nothing"), "--out", str(out)]) == 2
    assert "not a model directory" in capsys.readouterr().err
