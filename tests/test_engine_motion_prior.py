"""WorldEngine with a motion prior: each frame starts from the last one moved by the prior, noised."""

import numpy as np
import pytest
import torch
from conftest import make_model_dir

from gameworld.actions import Action, ActionSpace
from gameworld.engine import EngineSettings, WorldEngine
from gameworld.metrics.motion import apply_motion
from gameworld.modeldir import load_model_dir
from gameworld.motion_prior import MotionPrior, feature_names
from gameworld.streaming import Sampling
from gameworld.voxel.world import VoxelWorld

NAMES = feature_names(ActionSpace.minecraft())
TURN = Action.of(camera=(0, 4))
SCRIPT = [TURN] * 3 + [Action.of("forward")] * 2 + [Action.null(), TURN, TURN]


def prior() -> MotionPrior:
    """Forward zooms in by 2% a frame, a degree of yaw pans by 3% of the width."""
    weights = {"forward": (0.02, 0.0, 0.0), "dyaw": (0.0, -0.03, 0.0)}
    return MotionPrior(NAMES, tuple(weights.get(name, (0.0, 0.0, 0.0)) for name in NAMES))


@pytest.fixture(scope="module")
def prior_model_dir(tmp_path_factory):
    """The tiny model (same weights as `tiny_model_dir`) with a motion prior beside it."""
    model_dir = make_model_dir(tmp_path_factory.mktemp("models") / "tiny_prior")
    prior().save(model_dir)
    return model_dir


def engine(model_dir, **settings) -> WorldEngine:
    return WorldEngine.from_pretrained(model_dir, device="cpu", steps=2, **settings)


def spy_on_samples(eng: WorldEngine, monkeypatch) -> list:
    """Record (start guess, sampling, latents, noise_of) of every `stream.sample` call of `eng`."""
    calls, sample = [], eng.stream.sample
    def spy(actions, sampling, start=None, noise_of=None):
        calls.append((start, sampling, sample(actions, sampling, start, noise_of), noise_of))
        return calls[-1][2]

    monkeypatch.setattr(eng.stream, "sample", spy)
    return calls


def test_the_setting_needs_a_prior_and_a_level_inside_zero_to_one(tiny_model_dir, prior_model_dir):
    with pytest.raises(ValueError, match=r"motion_prior=0.5: this model has no motion_prior.json"):
        engine(tiny_model_dir, motion_prior=0.5)
    plain = engine(tiny_model_dir)
    with pytest.raises(ValueError, match="this model has no motion_prior.json"):
        plain.configure(motion_prior=0.5)
    assert plain.settings.motion_prior is None  # the failed change left the engine as it was
    for level in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="motion_prior must be a noise level in"):
            EngineSettings(motion_prior=level)
    for bad in (0.0, 1.2):
        with pytest.raises(ValueError, match="start_level must be in"):
            Sampling(start_level=bad)
    other_game = MotionPrior(("forward", "dyaw"), ((0.01, 0.0, 0.0), (0.0, -0.01, 0.0)))
    config, tokenizer, model = load_model_dir(tiny_model_dir)
    with pytest.raises(ValueError, match=r"the motion prior reads features \('forward', 'dyaw'\)"):
        WorldEngine(config, tokenizer, model, prior=other_game)


def test_a_prior_on_disk_changes_nothing_until_the_setting_asks_for_it(tiny_model_dir, prior_model_dir):
    frames = []
    for model_dir in (tiny_model_dir, prior_model_dir):
        eng = engine(model_dir)
        eng.reset(seed=1, biome="forest")
        frames.append(eng.rollout(SCRIPT))
    assert np.array_equal(*frames)
    eng = engine(prior_model_dir)
    eng.reset(seed=1, biome="forest")
    eng.configure(motion_prior=0.5)
    assert not np.array_equal(eng.rollout(SCRIPT), frames[0])


def test_an_input_that_hardly_moves_the_view_starts_from_pure_noise_as_without_the_prior(prior_model_dir):
    still = [Action.null(), Action.of("jump"), Action.of(camera=(0, 0.1))]  # 0.1 degree: 0.2 px, still
    frames = []
    for level in (None, 0.5):
        eng = engine(prior_model_dir, motion_prior=level)
        eng.reset(seed=1, biome="forest")
        frames.append(eng.rollout(still))
    assert np.array_equal(*frames)


def test_sampling_starts_from_the_newest_frame_moved_by_the_prior(prior_model_dir, monkeypatch):
    eng = engine(prior_model_dir, motion_prior=0.05)
    start_frame = eng.reset(seed=1, biome="forest")
    calls = spy_on_samples(eng, monkeypatch)
    eng.step(TURN)
    start, sampling, latents, noise_of = calls[0]
    assert sampling.start_level == 0.05 and noise_of is None  # a moving frame takes its own noise
    moved = apply_motion(start_frame, np.array([0.0, -0.12, 0.0]))  # 4 degrees: 12% of the width
    torch.testing.assert_close(start, eng.tokenizer.encode(moved[None, None]))
    still = eng.tokenizer.encode(start_frame[None, None])
    # from 5% noise the frame stays near its start: much nearer than the unmoved frame is
    assert torch.dist(latents, start) < 0.3 * torch.dist(still, start)


def test_looking_straight_down_a_turn_sideways_starts_from_the_frame_spun(prior_model_dir, monkeypatch):
    eng = engine(prior_model_dir, motion_prior=0.05)
    world = VoxelWorld(seed=1, biome="forest", width=64, height=32)
    look_down = Action.of(camera=(45.0, 0.0))
    context = np.stack([world.reset(), world.step(look_down)[0], world.step(look_down)[0]])
    eng.reset(frames=context, actions=[Action.null(), look_down, look_down])  # the view looks straight down
    calls = []
    sample = eng.stream.sample
    monkeypatch.setattr(eng.stream, "sample", lambda *args: calls.append(args) or sample(*args))
    eng.step(TURN)
    spun = apply_motion(context[-1], np.array([0.0, 0.0, 0.0, -4.0]))  # no pan: the ground spins
    torch.testing.assert_close(calls[0][2], eng.tokenizer.encode(spun[None, None]))


def test_the_stream_refuses_a_start_that_does_not_fit_the_level(prior_model_dir):
    eng = engine(prior_model_dir)
    eng.reset()
    action = eng.space.encode([TURN])[None]
    start = eng.tokenizer.encode(eng.frame[None, None])
    with pytest.raises(ValueError, match="a start guess goes with start_level < 1"):
        eng.stream.sample(action, Sampling(start_level=1.0), start)
    with pytest.raises(ValueError, match="a start guess goes with start_level < 1"):
        eng.stream.sample(action, Sampling(start_level=0.5))
    with pytest.raises(ValueError, match=r"sample: start must be \(1, 1, 8, 4, 8\)"):
        eng.stream.sample(action, Sampling(start_level=0.5), start.expand(1, 2, -1, -1, -1))


@pytest.mark.parametrize("still_level", [None, 0.3])
def test_speculative_frames_made_one_after_another_equal_the_plain_engine_with_the_prior(
    prior_model_dir, still_level
):
    # Each speculative frame starts from the one before it moved (or from the rest frame), as the
    # plain engine's next step does: the same frames (tolerance as in test_engine_speculative).
    settings = {"motion_prior": 0.5, "still_level": still_level}
    plain = engine(prior_model_dir, **settings)
    speculative = engine(prior_model_dir, **settings, speculative=2, joint=False)
    plain.reset(seed=2, biome="forest"), speculative.reset(seed=2, biome="forest")
    script = SCRIPT + [Action.of("attack")] * 4 + [Action.null()] * 4
    a, b = plain.rollout(script), speculative.rollout(script)
    assert speculative.stats.accepted > 0 and speculative.stats.rejected > 0
    assert np.abs(a.astype(int) - b).max() <= 1
    assert (a != b).mean() < 1e-3


def test_joint_speculative_frames_start_from_the_frame_moved_once_twice_and_on(prior_model_dir, monkeypatch):
    eng = engine(prior_model_dir, motion_prior=0.5, speculative=2)
    eng.reset(seed=2, biome="forest")
    eng.step(TURN)
    calls = []
    sample = eng.stream.sample
    monkeypatch.setattr(eng.stream, "sample", lambda *args: calls.append(args) or sample(*args))
    frame = eng.frame
    eng.step(TURN)  # the action repeats: this frame and 2 more in one pass
    start = calls[0][2]
    assert start.shape[1] == 3
    for k in range(3):
        moved = apply_motion(frame, np.array([0.0, -0.12 * (k + 1), 0.0]))
        torch.testing.assert_close(start[:, k], eng.tokenizer.encode(moved[None, None])[:, 0])


def test_the_engine_follows_the_pitch_and_turns_the_prior_no_further_than_the_camera(
    prior_model_dir, monkeypatch
):
    eng = engine(prior_model_dir, motion_prior=0.5)
    weights = dict(zip(NAMES, prior().weights, strict=True))
    weights["dpitch"] = (0.0, 0.0, -0.03)
    eng.prior = MotionPrior(NAMES, tuple(weights[name] for name in NAMES))
    look_down = Action.of(camera=(10.0, 0.0))
    frames = np.zeros((3, 32, 64, 3), np.uint8)
    eng.reset(frames=frames, actions=[look_down, look_down, Action.of(camera=(20.0, 0.0))])
    assert eng._pitch == 30.0  # the first action made the first frame, taken as level
    starts = []
    sample = eng.stream.sample
    monkeypatch.setattr(eng.stream, "sample", lambda *args: starts.append(args[2]) or sample(*args))
    eng.rollout([look_down] * 8)  # 30 -> 90 in 6 frames, then the camera stops
    assert eng._pitch == 90.0
    assert [start is not None for start in starts] == [True] * 6 + [False] * 2  # still: pure noise
    eng.reset(seed=1, biome="forest")
    assert eng._pitch == 0.0


def test_past_the_pitch_limit_the_network_is_told_the_turn_the_camera_makes(prior_model_dir, monkeypatch):
    def encoded_rollout(eng, actions):
        eng.reset(seed=0, biome="plains")
        encoded, encode = [], eng._encode
        monkeypatch.setattr(eng, "_encode", lambda batch: encoded.extend(batch) or encode(batch))
        eng.rollout(actions)
        return encoded

    look_up = Action.of("forward", camera=(-4.0, 3.0))
    eng = engine(prior_model_dir, motion_prior=0.5)
    eng.prior = MotionPrior(NAMES, prior().weights, pitch_limit=10.0)
    encoded = encoded_rollout(eng, [look_up] * 5)  # pitch 0 -> -4 -> -8 -> -10, then the camera stops
    assert [a.camera for a in encoded] == [(-4.0, 3.0), (-4.0, 3.0), (-2.0, 3.0), (0.0, 3.0), (0.0, 3.0)]
    assert all(a.keys == {"forward"} for a in encoded) and eng._pitch == -10.0
    plain = encoded_rollout(engine(prior_model_dir), [look_up] * 5)  # no prior: no pitch followed
    assert [a.camera for a in plain] == [(-4.0, 3.0)] * 5


def test_the_still_level_is_a_noise_level_and_asks_nothing_without_the_prior(tiny_model_dir, prior_model_dir):
    for level in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="still_level must be a noise level in"):
            EngineSettings(still_level=level)
    frames = []
    for still_level in (None, 0.3):  # the prior is off: it cannot say the view holds still
        eng = engine(prior_model_dir, still_level=still_level)
        eng.reset(seed=1, biome="forest")
        frames.append(eng.rollout([Action.null()] * 3))
    assert np.array_equal(*frames)


def test_still_frames_start_from_the_newest_frame_an_input_made(prior_model_dir, monkeypatch):
    eng = engine(prior_model_dir, motion_prior=0.5, still_level=0.3)
    start_frame = eng.reset(seed=1, biome="forest")
    calls = spy_on_samples(eng, monkeypatch)
    null, attack = Action.null(), Action.of("attack")  # the attack acts on the world, the view holds
    eng.rollout([null, null, TURN, TURN, null, null, attack, null])
    levels = [sampling.start_level for _, sampling, _, _ in calls]
    assert levels == [0.3, 0.3, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3]
    # still frames take the rest frame's noise: the start is frame 0, the turns made frames 3 and 4
    assert [noise_of for *_, noise_of in calls] == [0, 0, None, None, 4, 4, 4, 7]
    rest = eng.tokenizer.encode(start_frame[None, None])  # the last context frame, as committed
    for index in (0, 1):  # no input yet: the start frame each time, not the frame before
        torch.testing.assert_close(calls[index][0], rest)
    turned = calls[3][2]  # the newest frame the turn made: its own latent, not decoded and encoded again
    for index in (4, 5, 6):  # null inputs leave the rest where it was; the attack starts there too
        assert torch.equal(calls[index][0], turned)
    assert torch.equal(calls[7][0], calls[6][2])  # the attack's frame is the new rest


def test_a_still_rollout_stays_near_its_rest_frame_where_pure_noise_does_not(prior_model_dir, monkeypatch):
    # From level 0.05 each still frame is the rest frame lightly redrawn, so the twentieth is as near
    # it as the first; from pure noise this untrained model's frames have nothing to keep them there.
    distances = {}
    for still_level in (None, 0.05):
        eng = engine(prior_model_dir, motion_prior=0.5, still_level=still_level)
        eng.reset(seed=1, biome="forest")
        rest = eng.tokenizer.encode(eng.frame[None, None])  # [1, 1, C, h, w]
        calls = spy_on_samples(eng, monkeypatch)
        eng.rollout([Action.null()] * 20)
        distances[still_level] = torch.stack([torch.dist(call[2], rest) for call in calls])  # [20]
    assert distances[0.05].max() < 0.2 * distances[None].min()
    assert distances[0.05][-1] < 1.5 * distances[0.05][0]


def test_joint_speculative_still_frames_all_start_from_the_rest_frame(prior_model_dir, monkeypatch):
    eng = engine(prior_model_dir, motion_prior=0.5, still_level=0.3, speculative=2)
    eng.reset(seed=2, biome="forest")
    calls = spy_on_samples(eng, monkeypatch)
    eng.rollout([TURN, Action.null(), Action.null()])  # the null repeats: that frame and 2 more in one pass
    turned = calls[0][2]  # frame 1
    start, sampling, _, noise_of = calls[2]
    assert sampling.start_level == 0.3 and noise_of == 1
    assert torch.equal(start, turned.expand(1, 3, -1, -1, -1))


def test_the_stream_can_start_new_frames_from_the_noise_of_another(prior_model_dir):
    def sample(noise_of):
        eng = engine(prior_model_dir)
        eng.reset(seed=3, biome="forest")
        action = eng.space.encode([Action.null()])[None]
        return eng.stream.sample(action, eng.settings.sampling, None, noise_of)

    assert torch.equal(sample(None), sample(1))  # frame 1's own noise
    assert not torch.allclose(sample(None), sample(0), atol=1e-3)
    assert torch.equal(sample(0), sample(0))
