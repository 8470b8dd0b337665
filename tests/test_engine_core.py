"""WorldEngine: settings, start scenes, determinism, cache on/off, bad input, live settings."""

import numpy as np
import pytest
import torch

from gameworld.actions import Action
from gameworld.data import write_episode
from gameworld.data.video import write_video
from gameworld.engine import EngineSettings, WorldEngine, fit_frames
from gameworld.modeldir import read_config

WALK = [Action.of("forward")] * 2 + [Action.of("left", camera=(0, 4))] + [Action.of("jump")] * 2


def engine(model_dir, **settings) -> WorldEngine:
    return WorldEngine.from_pretrained(model_dir, device="cpu", steps=2, **settings)


def context_latents(eng: WorldEngine) -> torch.Tensor:
    return eng.stream.context()[0]


def test_settings_come_from_the_model_directory_and_reject_unknown_names(tiny_model_dir):
    config = read_config(tiny_model_dir)
    settings = EngineSettings.from_config(config, speculative=2)
    assert settings.steps == config.sampler.steps and settings.sampler == config.sampler.sampler
    assert settings.speculative == 2 and settings.use_cache
    with pytest.raises(ValueError, match=r"unknown engine setting\(s\) \['stepz'\]"):
        EngineSettings.from_config(config, stepz=3)
    for bad, message in [
        (dict(steps=0), "steps must be"),
        (dict(sampler="ddim"), "unknown sampler"),
        (dict(context_noise=1.0), "context_noise"),
        (dict(temperature=-0.5), "temperature must be"),
        (dict(speculative=-1), "speculative must be"),
    ]:
        with pytest.raises(ValueError, match=message):
            EngineSettings(**bad)


def test_cuda_graphs_need_cuda_and_the_window_must_fit_the_model(tiny_model_dir):
    with pytest.raises(ValueError, match="cuda_graphs needs a CUDA device"):
        engine(tiny_model_dir, cuda_graphs=True)
    for window in (7, 9):  # the model attends to 2..6 frames (max_frames 6, no sink frames)
        with pytest.raises(ValueError, match=rf"window {window}: this world model attends to 2\.\.6 frames"):
            engine(tiny_model_dir, window=window)


def test_a_rollout_is_a_function_of_seed_start_and_actions(tiny_model_dir):
    first = engine(tiny_model_dir, seed=3)
    start = first.reset(seed=1, biome="forest")
    frames = first.rollout(WALK)
    assert frames.shape == (len(WALK), 32, 64, 3) and frames.dtype == np.uint8
    again = engine(tiny_model_dir, seed=3)
    assert np.array_equal(again.reset(seed=1, biome="forest"), start)
    assert np.array_equal(again.rollout(WALK), frames)
    assert np.array_equal(first.reset(seed=1, biome="forest"), start)  # reset forgets everything
    assert np.array_equal(first.rollout(WALK), frames)
    other_noise = engine(tiny_model_dir, seed=4)
    other_noise.reset(seed=1, biome="forest")
    assert not np.array_equal(other_noise.rollout(WALK), frames)
    other_actions = engine(tiny_model_dir, seed=3)
    other_actions.reset(seed=1, biome="forest")
    assert not np.array_equal(other_actions.rollout([Action.of("back")] * len(WALK)), frames)


def test_temperature_scales_the_starting_noise_and_zero_makes_the_seed_irrelevant(tiny_model_dir):
    def latents(seed: int, temperature: float) -> torch.Tensor:
        eng = engine(tiny_model_dir, seed=seed, temperature=temperature, context_noise=0.0)
        eng.reset(seed=1, biome="forest")
        eng.rollout(WALK)
        return context_latents(eng)

    assert torch.equal(latents(3, 0.0), latents(4, 0.0))  # no noise anywhere: one world, whatever the seed
    assert not torch.equal(latents(3, 1.0), latents(4, 1.0))
    assert torch.equal(latents(3, 1.0), latents(3, read_config(tiny_model_dir).sampler.temperature))
    calm = latents(3, 0.5)
    assert not torch.equal(calm, latents(3, 1.0)) and not torch.equal(calm, latents(3, 0.0))


def test_the_generated_frame_depends_on_the_start_frame(tiny_model_dir):
    eng = engine(tiny_model_dir)
    eng.reset(seed=1, biome="forest")
    forest = eng.step(Action.null())
    eng.reset(seed=1, biome="desert")
    assert not np.array_equal(eng.step(Action.null()), forest)


def test_rollout_with_the_cache_equals_rollout_without_it_within_the_window(tiny_model_dir):
    # Window 6: 2 start frames + 4 steps = 6 frames, all within one window. Tolerance: latents
    # agree to 1e-5 (the cache and the recompute batch the same sums differently), frames to 1 level.
    start = np.stack([fit_frames(f[None], 64, 32)[0] for f in np.random.default_rng(0).integers(
        0, 255, size=(2, 32, 64, 3), dtype=np.uint8)])
    cached, recomputed = engine(tiny_model_dir), engine(tiny_model_dir, use_cache=False)
    for eng in (cached, recomputed):
        eng.reset(frames=start, actions=[Action.null(), Action.of("forward")])
    script = WALK[:4]
    a, b = cached.rollout(script), recomputed.rollout(script)
    assert cached.num_frames == recomputed.num_frames == 6
    torch.testing.assert_close(context_latents(cached), context_latents(recomputed), atol=1e-5, rtol=0)
    assert np.abs(a.astype(int) - b).max() <= 1
    assert cached.stream.num_unwritten == 1  # the newest frame is written by the next model call
    cached.stream.flush()
    assert cached.stream.cache.num_frames == 6 and recomputed.stream.use_cache is False


def test_reset_from_frames_commits_them_all_and_returns_the_last(tiny_model_dir, make_frames):
    frames = make_frames(4, height=32, width=64)
    actions = [Action.null(), Action.of("forward"), Action.of("forward"), Action.of("jump")]
    eng = engine(tiny_model_dir)
    assert np.array_equal(eng.reset(frames=frames, actions=actions), frames[-1])
    assert eng.num_frames == 4 and eng.frame is not frames[-1]
    assert np.array_equal(eng.reset(frames=frames[0]), frames[0])  # one [H, W, 3] frame
    assert eng.num_frames == 1


def test_reset_resizes_frames_of_another_size(tiny_model_dir, make_frames):
    big = make_frames(1, height=90, width=160)
    eng = engine(tiny_model_dir)
    assert eng.reset(frames=big).shape == (32, 64, 3)
    square = fit_frames(make_frames(1, height=64, width=64), 64, 32)
    assert square.shape == (1, 32, 64, 3)


def test_reset_from_an_episode_takes_its_first_frames_and_actions(tiny_model_dir, make_frames, tmp_path):
    frames = make_frames(9, height=32, width=64)
    actions = [Action.null()] + [Action.of("forward", camera=(0, 2))] * 8
    write_episode(tmp_path / "ep", frames, actions, lossless=True)
    eng = engine(tiny_model_dir)
    start = eng.reset(video=tmp_path / "ep.mp4")
    assert eng.num_frames == 5  # window 6: the first 5 frames become the context
    assert np.array_equal(start, frames[4])
    # the same as giving those frames and actions by hand
    by_hand = engine(tiny_model_dir)
    by_hand.reset(frames=frames[:5], actions=actions[:5])
    assert np.array_equal(eng.step(Action.null()), by_hand.step(Action.null()))


def test_reset_from_a_plain_video_uses_null_actions(tiny_model_dir, make_frames, tmp_path):
    frames = make_frames(3, height=32, width=64)
    write_video(tmp_path / "clip.mp4", frames, 20, lossless=True)
    eng = engine(tiny_model_dir)
    assert np.array_equal(eng.reset(video=tmp_path / "clip.mp4"), frames[-1])
    assert eng.num_frames == 3


def test_bad_input_gets_clear_errors(tiny_model_dir, make_frames, tmp_path):
    eng = engine(tiny_model_dir)
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
        eng.step(Action.null())
    with pytest.raises(ValueError, match="frames must be uint8"):
        eng.reset(frames=np.zeros((2, 32, 64, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="2 actions for 3 frames"):
        eng.reset(frames=make_frames(3, 32, 64), actions=[Action.null()] * 2)
    with pytest.raises(ValueError, match="not both"):
        eng.reset(frames=make_frames(1, 32, 64), video=tmp_path / "x.mp4")
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        eng.reset(video=tmp_path / "missing.mp4")
    eng.reset()
    with pytest.raises(ValueError, match=r"unknown key name\(s\) \['fly'\]"):
        eng.step(Action.of("fly"))
    with pytest.raises(FileNotFoundError, match="not a model directory"):
        WorldEngine.from_pretrained(tmp_path / "nothing")


def test_contradictory_keys_follow_the_action_space(tiny_model_dir):
    a, b = engine(tiny_model_dir), engine(tiny_model_dir)
    for eng in (a, b):
        eng.reset()
    assert np.array_equal(a.step(Action.of("forward", "back", "jump")), b.step(Action.of("jump")))


def test_sampler_settings_change_between_steps(tiny_model_dir):
    live, fixed = engine(tiny_model_dir), engine(tiny_model_dir)
    live.reset(), fixed.reset()
    live.step(Action.null()), fixed.step(Action.null())
    live.configure(steps=1)
    assert live.settings.steps == 1
    assert not np.array_equal(live.step(Action.null()), fixed.step(Action.null()))
    with pytest.raises(ValueError, match="cannot change on a running engine"):
        live.configure(compile=True)


def test_switching_the_cache_off_mid_rollout_continues_the_same_world(tiny_model_dir):
    switched, recomputed = engine(tiny_model_dir), engine(tiny_model_dir, use_cache=False)
    for eng in (switched, recomputed):
        eng.reset()
        eng.rollout(WALK[:2])
    switched.configure(use_cache=False)
    assert switched.num_frames == 3 and switched.stream.use_cache is False
    a, b = switched.rollout(WALK[2:]), recomputed.rollout(WALK[2:])
    assert np.abs(a.astype(int) - b).max() <= 1
    torch.testing.assert_close(context_latents(switched), context_latents(recomputed), atol=1e-5, rtol=0)
    switched.configure(speculative=2, use_cache=True)
    assert switched.stream.lookahead == 2 and switched.num_frames == 6
    switched.step(Action.of("jump"))  # the action holds: this frame and 2 more are generated
    assert switched.stats.speculated == 2 and switched.num_frames == 9


def test_stats_count_frames_and_latency(tiny_model_dir):
    eng = engine(tiny_model_dir)
    eng.reset()
    eng.rollout(WALK)
    stats = eng.stats
    assert stats.frames == stats.generated == len(WALK)
    assert stats.last_latency_s > 0 and stats.single_step_s > 0
    assert stats.acceptance_rate is None and stats.speculated == 0
    eng.reset()
    assert eng.stats.frames == 0
