"""Speculative sampling: hand-out while the action holds, rollback at every mismatch, exactness."""

import numpy as np
import pytest
import torch
from conftest import make_model_dir

from gameworld.actions import Action
from gameworld.engine import WorldEngine

F, L, J = Action.of("forward"), Action.of("left", camera=(0, 3)), Action.of("jump")
# Runs of held actions that end after 0, 1, 2, 3 and more speculative frames, past the window (6).
SCRIPT = [F, F, L, L, L, J, F, F, F, F, F, F, F, L, J, J, J, J, F, F, L, L, L, L, L, L, L, L, L, J]


@pytest.fixture(scope="module")
def sink_model_dir(tmp_path_factory):
    """Window 6 of which the first frame of the rollout is a sink frame, kept forever."""
    return make_model_dir(tmp_path_factory.mktemp("models") / "sinks", sink_frames=1)


@pytest.fixture(scope="module")
def previous_model_dir(tmp_path_factory):
    """Window 6, each frame also reading the previous frame's latent (kept per slot in the cache)."""
    return make_model_dir(tmp_path_factory.mktemp("models") / "previous", previous_frame_input=True)


def engine(model_dir, **settings) -> WorldEngine:
    return WorldEngine.from_pretrained(model_dir, device="cpu", steps=2, **settings)


class WriteLog:
    """Records what every committing `forward_step` wrote: frame index -> (noised latent, level, action)."""

    def __init__(self, eng: WorldEngine) -> None:
        self.frames: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self.model = eng.model
        self.original = eng.model.forward_step
        eng.model.forward_step = self.forward_step

    def forward_step(self, latents, levels, actions, cache, write=False, write_count=None):
        if write:
            for i in range(latents.shape[1] if write_count is None else write_count):
                self.frames[cache.num_frames + i] = (latents[:, i], levels[:, i], actions[:, i])
        return self.original(latents, levels, actions, cache, write, write_count)

    @torch.no_grad()
    def rebuild(self, num_frames: int, like):
        """A fresh cache with frames 0 .. num_frames - 1 committed one at a time from the log."""
        cache = self.model.new_cache(1, extra_frames=like.extra_frames)
        for frame in range(num_frames):
            latent, level, action = self.frames[frame]
            self.original(latent[:, None], level[:, None], action[:, None], cache, write=True)
        return cache


def assert_same_cache(cache, rebuilt) -> None:
    """Same frame count, nothing past it, and the same keys/values for every frame the next window needs
    (older slots may differ: a rolled-back frame may have overwritten a frame no window needs any more)."""
    assert cache.num_frames == rebuilt.num_frames
    assert max(cache.slot_frames) == cache.num_frames - 1  # nothing past the committed frames
    sinks = cache.sink_frames
    recent = range(max(sinks, cache.num_frames - (cache.window_frames - 1 - sinks)), cache.num_frames)
    needed = [*range(min(sinks, cache.num_frames)), *recent]
    slots = [cache.slot_frames.index(frame) for frame in needed]
    assert slots == [rebuilt.slot_frames.index(frame) for frame in needed]
    per_frame = cache.tokens_per_frame
    tokens = torch.cat([torch.arange(s * per_frame, (s + 1) * per_frame) for s in slots])
    for mine, theirs in ((cache.keys, rebuilt.keys), (cache.values, rebuilt.values)):
        torch.testing.assert_close(mine[:, :, :, tokens], theirs[:, :, :, tokens], atol=1e-5, rtol=1e-5)
    if cache.frame_latents is not None:
        torch.testing.assert_close(cache.frame_latents[slots], rebuilt.frame_latents[slots], atol=0, rtol=0)


@pytest.mark.parametrize("joint", [True, False])
@pytest.mark.parametrize("model", ["tiny_model_dir", "sink_model_dir", "previous_model_dir"])
def test_rollback_at_every_mismatch_leaves_exactly_the_committed_frames(request, model, joint):
    eng = engine(request.getfixturevalue(model), speculative=3, joint=joint)
    log = WriteLog(eng)
    eng.reset()
    mismatches = 0
    for t, action in enumerate(SCRIPT):
        pending = eng._speculation.action if eng._speculation else None
        eng.step(action)
        handed_out = 1 + t + 1  # the start frame and the frames of steps 0..t
        if pending is not None and pending != action:  # the speculative frames were dropped
            mismatches += 1
            assert eng.num_frames == handed_out and eng._speculation is None
        waiting = len(eng._speculation.latents) if eng._speculation else 0
        assert eng.num_frames == handed_out + waiting
        assert len(eng.stream.context()[0][0]) == min(eng.num_frames, 5)
        # The newest frames reach the cache with the next model call: it holds all the others.
        cache = eng.stream.cache
        assert cache.num_frames + eng.stream.num_unwritten == eng.num_frames
        assert_same_cache(cache, log.rebuild(cache.num_frames, cache))
    assert mismatches == 5
    eng.stream.flush()
    assert_same_cache(eng.stream.cache, log.rebuild(eng.num_frames, eng.stream.cache))
    stats = eng.stats
    assert stats.rejected > 0 and stats.accepted > 0
    assert stats.speculated == stats.accepted + stats.rejected + waiting
    assert stats.generated == stats.frames - stats.accepted + stats.speculated
    assert stats.acceptance_rate == pytest.approx(stats.accepted / (stats.accepted + stats.rejected))


def test_speculative_frames_made_one_after_another_equal_the_plain_engine(tiny_model_dir):
    # The noise of a frame depends on its index only, so speculating, dropping and redoing frames
    # changes nothing. Tolerance: the speculative cache has 3 more (masked) slots, which reorders
    # the attention sums: latents agree to 1e-5, frames to 1 level.
    plain, speculative = engine(tiny_model_dir), engine(tiny_model_dir, speculative=3, joint=False)
    plain.reset(seed=2, biome="forest"), speculative.reset(seed=2, biome="forest")
    a, b = plain.rollout(SCRIPT), speculative.rollout(SCRIPT)
    assert speculative.stats.accepted > 0 and speculative.stats.rejected > 0
    assert np.abs(a.astype(int) - b).max() <= 1
    assert (a != b).mean() < 1e-3
    speculative._drop_speculation()
    torch.testing.assert_close(plain.stream.context()[0], speculative.stream.context()[0], atol=1e-5, rtol=0)


def test_joint_speculative_frames_follow_the_held_action_and_save_passes(tiny_model_dir):
    plain, joint = engine(tiny_model_dir), engine(tiny_model_dir, speculative=3)
    plain.reset(), joint.reset()
    held = [F] * 9
    a, b = plain.rollout(held), joint.rollout(held)
    # step 0 differs from the start's null action; step 1 speculates 1 + 3 frames, step 5 again.
    assert joint.stats.speculated == 6 and joint.stats.accepted == 6 and joint.stats.rejected == 0
    assert joint.stats.generated == plain.stats.generated == 9
    assert np.array_equal(a[:2], b[:2])  # the first frame of a joint pass sees only committed frames
    assert not np.array_equal(a[2:], b[2:])  # later ones were denoised alongside it
    assert joint.stats.acceptance_rate == 1.0


def test_no_speculation_when_the_action_changes_every_frame(tiny_model_dir):
    eng = engine(tiny_model_dir, speculative=4)
    eng.reset()
    eng.rollout([Action.of("forward", camera=(0, float(t))) for t in range(1, 6)])
    assert eng.stats.speculated == 0 and eng.num_frames == 6


def test_reset_drops_pending_speculative_frames(tiny_model_dir):
    eng = engine(tiny_model_dir, speculative=3)
    eng.reset()
    eng.rollout([Action.null()] * 2)
    assert eng._speculation is not None
    eng.reset()
    assert eng._speculation is None and eng.num_frames == 1
