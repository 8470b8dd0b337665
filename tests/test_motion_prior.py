"""The motion prior: a robust linear fit of the view's motion on the action, its file, its fit on the game."""

import argparse
import json
import re

import numpy as np
import pytest
from conftest import make_model_dir, write_smooth_episodes

from gameworld import motion_prior
from gameworld.actions import Action, ActionSpace
from gameworld.data import open_episode, write_episode
from gameworld.engine import WorldEngine
from gameworld.metrics.motion import apply_motion
from gameworld.modeldir import read_config
from gameworld.motion_prior import (
    PRIOR_NAME,
    MotionPrior,
    action_features,
    add_motion_prior_arguments,
    feature_names,
    fit_on_episodes,
    largest_shift,
    motion_prior_settings,
    moves_view,
)
from gameworld.voxel.world import VoxelWorld
from training import fit_motion_prior

SPACE = ActionSpace.minecraft()
NAMES = feature_names(SPACE)
# (zoom, pan_x, pan_y) per unit: forward zooms in, left pans right, a degree of yaw pans left
TRUE = {"forward": (0.016, 0.0, 0.0), "left": (0.0, 0.005, 0.0), "dyaw": (0.0, -0.0074, 0.0),
        "dpitch": (0.0, 0.0, -0.0125)}


def random_actions(count: int, seed: int = 0) -> list[Action]:
    rng = np.random.default_rng(seed)
    keys = [(), ("forward",), ("left",), ("forward", "left"), ("attack",)]
    turns = rng.uniform(-6, 6, (count, 2)) * (rng.random((count, 1)) < 0.5)
    return [Action.of(*keys[rng.integers(len(keys))], camera=tuple(turn)) for turn in turns]


def true_weights() -> np.ndarray:
    weights = np.zeros((len(NAMES), 3))
    for name, row in TRUE.items():
        weights[NAMES.index(name)] = row
    return weights


def test_the_fit_recovers_known_weights_where_failed_readings_pull_least_squares_to_zero():
    count = 8000
    actions = random_actions(count)
    rng = np.random.default_rng(1)
    motion = action_features(actions, NAMES) @ true_weights() + rng.normal(0, 1e-3, (count, 3))
    failed = rng.random(count) < 0.2  # a view of sky only reads no motion at all
    motion[failed] = 0.0
    wild = rng.random(count) < 0.02  # a leap the reading did not follow
    motion[wild] = rng.normal(0, 0.2, (wild.sum(), 3))
    prior = MotionPrior.fit(motion, actions, SPACE)
    fitted = np.asarray(prior.weights)
    for name, row in TRUE.items():
        np.testing.assert_allclose(fitted[NAMES.index(name)], row, atol=0.1 * max(map(abs, row)))
    assert np.abs(fitted[NAMES.index("attack")]).max() < 1e-3  # a key that does not move the view
    assert np.all(fitted[NAMES.index("jump")] == 0)  # never pressed: no say
    rare = [Action.of("hotbar.3", *a.keys, camera=a.camera) if t < 5 else a for t, a in enumerate(actions)]
    rare_motion = motion.copy()
    rare_motion[:5] = 0.1  # a key pressed on 5 frames that happened to read wild
    rare_fit = np.asarray(MotionPrior.fit(rare_motion, rare, SPACE).weights)
    loose_fit = np.asarray(MotionPrior.fit(rare_motion, rare, SPACE, ridge=0.0).weights)
    rare_key = NAMES.index("hotbar.3")
    assert np.abs(rare_fit[rare_key]).max() < 0.2 * np.abs(loose_fit[rare_key]).max()
    plain = np.linalg.lstsq(action_features(actions, NAMES), motion, rcond=None)[0]
    forward = NAMES.index("forward")
    assert abs(plain[forward, 0] - 0.016) > 3 * abs(fitted[forward, 0] - 0.016)


def test_the_null_action_stands_still_and_held_inputs_add_up():
    prior = MotionPrior(NAMES, tuple(map(tuple, true_weights())))
    turn = (0.0, 5.0)
    actions = [Action.null(), Action.of("forward"), Action.of(camera=turn), Action.of("forward", camera=turn)]
    null, forward, turn, both = prior.predict(actions)
    assert np.all(null == 0)
    np.testing.assert_allclose(forward, TRUE["forward"], rtol=1e-6)
    np.testing.assert_allclose(turn, 5 * np.array(TRUE["dyaw"]), rtol=1e-6)
    np.testing.assert_allclose(both, forward + turn, rtol=1e-6)
    assert prior.predict([]).shape == (0, 3)


def test_a_held_look_stops_where_the_camera_does():
    prior = MotionPrior(NAMES, tuple(map(tuple, true_weights())))  # a degree of pitch: -1.25% of the height
    look_down = Action.of("forward", camera=(5.0, 0.0))
    motions = prior.held(look_down, 4, pitch=80.0)  # 80 -> 85 -> 90, then the camera stops
    np.testing.assert_allclose(motions[:, 2], [-0.0625, -0.0625, 0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(motions[:, 0], 0.016, rtol=1e-6)  # walking zooms on
    assert np.all(motions[:, [1, 3]] == 0)  # no turn sideways: no pan, no roll
    far = prior.held(look_down, 4)  # far from the limit
    assert np.array_equal(far[:, :3], prior.predict([look_down] * 4))
    looking_up = prior.held(Action.of(camera=(-10.0, 0.0)), 3, pitch=-75.0)  # -75 -> -85 -> -90 -> -90
    np.testing.assert_allclose(looking_up[:, 2], [0.125, 0.0625, 0.0], atol=1e-7)
    assert prior.pitch_after(80.0, [look_down] * 3) == 90.0 and prior.pitch_after(-85.0, [look_down]) == -80.0
    narrow = MotionPrior(NAMES, prior.weights, pitch_limit=30.0)
    assert np.all(narrow.held(look_down, 3, pitch=30.0)[:, 2] == 0)
    assert prior.pitch_turn(0.3, 0.1) == 0.1  # inside the limit: the turn as asked, to the last bit
    assert prior.pitch_turn(87.0, 5.0) == 3.0 and prior.pitch_turn(-88.0, -5.0) == -2.0
    assert prior.pitch_turn(90.0, 5.0) == 0.0 and prior.pitch_turn(90.0, -5.0) == -5.0


def test_a_turn_sideways_pans_a_level_view_and_spins_one_that_looks_straight_down_or_up():
    prior = MotionPrior(NAMES, tuple(map(tuple, true_weights())))
    turn = Action.of("forward", camera=(0.0, 4.0))
    level = prior.held(turn, 2)
    np.testing.assert_array_equal(level[:, :3], prior.predict([turn] * 2))
    assert np.all(level[:, 3] == 0)
    down, up, sixty = (prior.held(turn, 1, pitch=p)[0] for p in (90.0, -90.0, 60.0))
    assert down[1] == pytest.approx(0.0, abs=1e-9) and up[1] == pytest.approx(0.0, abs=1e-9)
    assert (down[3], up[3]) == pytest.approx((-4.0, 4.0))  # looking down, a right turn spins anticlockwise
    assert sixty[1] == pytest.approx(level[0, 1] / 2, rel=1e-5)  # cos 60: half the pan
    assert sixty[3] == pytest.approx(-4.0 * np.sin(np.radians(60.0)), rel=1e-5)
    assert down[0] == level[0, 0]  # walking zooms as ever
    tilting = prior.held(Action.of(camera=(10.0, 4.0)), 1, pitch=0.0)[0]  # 0 -> 10: turns at 5 degrees
    assert tilting[3] == pytest.approx(-4.0 * np.sin(np.radians(5.0)), rel=1e-5)


@pytest.mark.parametrize("pitch", [90.0, -90.0])
def test_the_roll_a_turn_adds_looking_straight_down_or_up_is_the_games(pitch):
    prior = MotionPrior(NAMES, tuple(map(tuple, true_weights())))
    world = VoxelWorld(seed=4, biome="plains", width=128, height=72)
    world.reset()
    before, _ = world.step(Action.of(camera=(pitch, 0.0)))
    turn = Action.of(camera=(0.0, 6.0))
    after, _ = world.step(turn)
    view = (slice(8, 50), slice(32, 96))  # around the centre, away from the HUD and the corners

    def error(motion: np.ndarray) -> float:
        return float(np.abs(apply_motion(before, motion)[view].astype(int) - after[view]).mean())

    motion = prior.held(turn, 1, pitch=pitch)[0]
    assert error(motion) < 0.5 * error(np.zeros(4)) and error(motion) < 0.5 * error(-motion)


def test_the_largest_shift_is_the_pan_zoom_and_roll_at_a_corner():
    corner = np.hypot(64, 32) / 2  # pixels from the centre
    assert largest_shift(np.array([0.0, 3 / 64, -4 / 32]), 64, 32) == pytest.approx(5.0)
    assert largest_shift(np.array([-0.01, 0.0, 0.0]), 64, 32) == pytest.approx(0.01 * corner)
    assert largest_shift(np.array([-0.01, 0.0, 0.0, 0.0]), 64, 32) == pytest.approx(0.01 * corner)
    chord = 2 * corner * np.sin(np.radians(1))  # a corner turned 2 degrees about the centre
    assert largest_shift(np.array([0.0, 0.0, 0.0, 2.0]), 64, 32) == pytest.approx(chord)
    assert largest_shift(np.array([0.02, 1 / 64, 0.0, 0.0]), 64, 32) == pytest.approx(
        np.hypot(0.02 * 32 + 1, 0.02 * 16)  # the corners on the side the pan goes to
    )


def test_a_view_moves_from_half_a_pixel_on():
    assert moves_view(np.array([0.0, 0.5 / 64, 0.0]), 64, 32)
    assert not moves_view(np.array([0.0, 0.49 / 64, 0.0]), 64, 32)
    assert not moves_view(np.array([0.0, 0.0, 0.0]), 64, 32)
    assert moves_view(np.array([0.0, 0.0, 0.3 / 32]), 64, 32) is False
    assert moves_view(np.array([0.0, 0.0, 0.0, 1.0]), 64, 32)  # a roll moves the corners 0.6 pixels


def test_the_file_round_trips_and_bad_files_name_themselves(tmp_path):
    prior = MotionPrior(NAMES, tuple(map(tuple, true_weights())), transitions=12, pitch_limit=80.0)
    (tmp_path / "model").mkdir()
    assert prior.save(tmp_path / "model") == tmp_path / "model" / PRIOR_NAME
    assert MotionPrior.load(tmp_path / "model") == prior
    assert MotionPrior.load(tmp_path / "model" / PRIOR_NAME) == prior
    with pytest.raises(FileNotFoundError, match=r"empty/motion_prior.json: no motion prior \(python -m"):
        MotionPrior.load(tmp_path / "empty" / PRIOR_NAME)
    good = json.loads(prior.to_json())
    for name, text in [
        ("broken.json", "{not json"),
        ("components.json", json.dumps({**good, "components": ["pan_x", "pan_y", "zoom"]})),
        ("rows.json", json.dumps({**good, "weights": good["weights"][:-1]})),
        ("columns.json", json.dumps({**good, "weights": [row[:2] for row in good["weights"]]})),
        ("nan.json", json.dumps({**good, "weights": [[float("nan")] * 3] * len(NAMES)})),
        ("missing.json", json.dumps({"components": good["components"]})),
        ("limit.json", json.dumps({**good, "pitch_limit": 0})),
    ]:
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=rf"{name}: not a valid motion prior"):
            MotionPrior.load(tmp_path / name)


def test_bad_fit_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"need motion \[N, 3\] for N actions"):
        MotionPrior.fit(np.zeros((3, 3)), [Action.null()] * 2, SPACE)
    with pytest.raises(ValueError, match="no action in the episodes presses a key or turns the camera"):
        MotionPrior.fit(np.zeros((3, 3)), [Action.null()] * 3, SPACE)


def test_fitted_on_the_voxel_games_episodes_it_knows_how_each_input_moves_the_view(tmp_path, monkeypatch):
    # 128x72 frames, vertical field of view 70 degrees: a degree of yaw moves the middle of the view
    # by (36 / tan 35) * pi / 180 = 0.90 px = 0.0070 of the width.
    inputs = [Action.of("forward"), Action.of("back"), Action.of(camera=(0, 4)), Action.of(camera=(0, -4)),
              Action.of(camera=(3, 0)), Action.of(camera=(-3, 0)), Action.null()]
    for seed in range(2):
        world = VoxelWorld(seed=100_000 + seed, biome="plains", width=128, height=72)
        actions = [Action.null()] + [a for a in inputs for _ in range(6)]
        frames = np.stack([world.reset(), *[world.step(a)[0] for a in actions[1:]]])
        write_episode(tmp_path / f"ep{seed}", frames, actions, fps=20)
    episodes = [open_episode(tmp_path / f"ep{seed}") for seed in range(2)]
    prior = fit_on_episodes(episodes, SPACE, ridge=1.0, progress=False)  # 6 frames an input: a small ridge
    weights = dict(zip(NAMES, np.asarray(prior.weights), strict=True))
    assert -0.0095 < weights["dyaw"][1] < -0.005
    assert -0.0095 * 128 / 72 < weights["dpitch"][2] < -0.005 * 128 / 72  # in shares of the height
    assert weights["forward"][0] > 0.003 and weights["back"][0] < -0.003
    monkeypatch.setattr(motion_prior, "CHUNK_FRAMES", 5)  # read in chunks: the same transitions
    chunked = fit_on_episodes(episodes, SPACE, ridge=1.0, progress=False)
    assert chunked.transitions == prior.transitions == 2 * 42
    np.testing.assert_allclose(chunked.weights, prior.weights, atol=1e-6)


def test_the_command_line_fits_the_prior_into_a_model_directory_and_turns_it_on(tmp_path, capsys):
    model_dir = make_model_dir(tmp_path / "model")  # 64x32 frames
    write_smooth_episodes(tmp_path / "episodes", 2)
    assert fit_motion_prior.main(["--episodes", str(tmp_path / "episodes"), "--model", str(model_dir),
                                  "--level", "0.4"]) == 0
    out = capsys.readouterr().out
    assert "| feature | zoom % | pan x px | pan y px |" in out
    assert "fitted on 46 transitions of 2 episodes" in out
    assert MotionPrior.load(model_dir).transitions == 46
    engine = WorldEngine.from_pretrained(model_dir, device="cpu")
    assert engine.settings.motion_prior == engine.settings.still_level == 0.4
    assert engine.prior == MotionPrior.load(model_dir)
    assert fit_motion_prior.main(["--episodes", str(tmp_path / "episodes"), "--model", str(model_dir),
                                  "--level", "0.5", "--still-level", "0.2"]) == 0
    sampler = read_config(model_dir).sampler
    assert (sampler.motion_prior, sampler.still_level) == (0.5, 0.2)


def test_the_command_line_names_what_is_wrong(tmp_path, capsys):
    model_dir = make_model_dir(tmp_path / "model")
    write_smooth_episodes(tmp_path / "wide", 1, width=96)
    (tmp_path / "none").mkdir()
    for args, message in [
        (["--episodes", str(tmp_path / "wide")], r"ep0.mp4: frames of 96x32, the model draws 64x32"),
        (["--episodes", str(tmp_path / "none")], "none: no episodes found"),
        (["--episodes", str(tmp_path / "wide"), "--level", "1.5"], "motion_prior must be a noise level in"),
        (["--episodes", str(tmp_path / "wide"), "--still-level", "0"], "still_level must be a noise level"),
    ]:
        assert fit_motion_prior.main([*args, "--model", str(model_dir)]) == 2
        assert re.search(message, capsys.readouterr().err)
    assert not (model_dir / PRIOR_NAME).exists()
    assert read_config(model_dir).sampler.motion_prior is read_config(model_dir).sampler.still_level is None


def test_the_motion_prior_options_take_a_level_or_off():
    parser = argparse.ArgumentParser()
    add_motion_prior_arguments(parser)
    def settings(*args: str) -> dict:
        return motion_prior_settings(parser.parse_args(args))

    assert settings() == {}  # the model's own settings
    assert settings("--motion-prior", "0.45") == {"motion_prior": 0.45}
    assert settings("--motion-prior", "off") == {"motion_prior": None}
    assert settings("--still-level", "0.3") == {"still_level": 0.3}
    both = {"motion_prior": 0.5, "still_level": None}
    assert settings("--motion-prior", "0.5", "--still-level", "off") == both
    for option in ("--motion-prior", "--still-level"):
        for bad in ("1", "0", "-0.2", "on"):
            with pytest.raises(SystemExit):
                parser.parse_args([option, bad])
