"""KVCache + forward_step: cached decoding equals the full forward; long rollouts; rollback."""

import pytest
import torch
from test_model_dit import random_inputs, random_model

from gameworld.models.attention import plan_frames


def step_through(model, cache, latents, levels, actions, chunk: int = 1) -> torch.Tensor:
    """Commit the clip `chunk` frames at a time; return the velocities of every frame [B, T, ...]."""
    outputs = []
    for start in range(0, latents.shape[1], chunk):
        part = slice(start, start + chunk)
        outputs.append(
            model.forward_step(latents[:, part], levels[:, part], actions[:, part], cache, write=True)
        )
    return torch.cat(outputs, dim=1)


@torch.no_grad()
@pytest.mark.parametrize("previous", [False, True])
@pytest.mark.parametrize("chunk", [1, 3])
def test_cached_decoding_equals_full_forward_within_the_window(chunk, previous):
    model = random_model(max_frames=8, previous_frame_input=previous)
    latents, levels, actions = random_inputs(model, batch=2, frames=7)
    full = model(latents, levels, actions)
    cache = model.new_cache(2, extra_frames=chunk)
    stepped = step_through(model, cache, latents, levels, actions, chunk)
    assert (stepped - full).abs().max() < 1e-4
    assert full.abs().max() > 0.1  # the comparison is not between zeros
    assert cache.num_frames == 7


@torch.no_grad()
def test_uncommitted_frames_leave_the_cache_untouched():
    model = random_model(max_frames=6)
    latents, levels, actions = random_inputs(model, batch=1, frames=4)
    cache = model.new_cache(1)
    step_through(model, cache, latents[:, :2], levels[:, :2], actions[:, :2])
    keys = cache.keys.clone()
    speculative = model.forward_step(latents[:, 2:], levels[:, 2:], actions[:, 2:], cache)  # write=False
    assert cache.num_frames == 2 and torch.equal(cache.keys, keys)
    assert (speculative - model(latents, levels, actions)[:, 2:]).abs().max() < 1e-4


@torch.no_grad()
@pytest.mark.parametrize("previous", [False, True])
@pytest.mark.parametrize("sinks", [0, 1])
def test_rollout_of_ten_windows_matches_sliding_window_forward_with_flat_memory(sinks, previous):
    window, frames = 4, 40
    model = random_model(max_frames=window, sink_frames=sinks, previous_frame_input=previous)
    latents, levels, actions = random_inputs(model, batch=1, frames=frames)
    full = model(latents, levels, actions)  # sliding-window attention over all 40 frames at once
    cache = model.new_cache(1)
    storage = (cache.keys.data_ptr(), cache.values.data_ptr(), cache.keys.shape)
    stepped = step_through(model, cache, latents, levels, actions)
    assert (stepped - full).abs().max() < 1e-4
    assert (cache.keys.data_ptr(), cache.values.data_ptr(), cache.keys.shape) == storage
    assert cache.num_frames == frames
    # the cache holds the sinks and the last window - 1 - sinks frames, nothing else
    assert sorted(cache.slot_frames) == list(range(sinks)) + list(
        range(frames - (window - 1 - sinks), frames)
    )
    # positions are relative to the window: the next frame sits at window - 1, its keys in [0, window)
    plan = plan_frames(
        [frames],
        cache.slot_frames[sinks:] + [frames],
        [frames] if sinks else [],
        [True] * sinks,
        window,
        sinks,
    )
    assert plan.query_positions.tolist() == [window - 1]
    visible_positions = sorted(plan.key_positions[plan.visible[0]].tolist())
    assert visible_positions == list(range(window))


@torch.no_grad()
@pytest.mark.parametrize("previous", [False, True])
def test_rollback_then_readding_equals_never_going_past_k(previous):
    model = random_model(max_frames=4, sink_frames=1, previous_frame_input=previous)
    latents, levels, actions = random_inputs(model, batch=1, frames=12, seed=3)
    wrong, _, _ = random_inputs(model, batch=1, frames=12, seed=4)
    k = 7

    straight = model.new_cache(1, extra_frames=3)
    reference = step_through(model, straight, latents, levels, actions)

    speculated = model.new_cache(1, extra_frames=3)
    step_through(model, speculated, latents[:, :k], levels[:, :k], actions[:, :k])
    step_through(
        model, speculated, wrong[:, k : k + 3], levels[:, k : k + 3], actions[:, k : k + 3]
    )  # 3 bad frames
    speculated.rollback(k)
    assert speculated.num_frames == k
    redone = step_through(model, speculated, latents[:, k:], levels[:, k:], actions[:, k:])

    assert torch.equal(redone, reference[:, k:])
    assert speculated.slot_frames == straight.slot_frames
    for slot, frame in enumerate(straight.slot_frames):
        tokens = slice(slot * model.tokens_per_frame, (slot + 1) * model.tokens_per_frame)
        if frame >= 0:
            assert torch.equal(speculated.keys[:, :, :, tokens], straight.keys[:, :, :, tokens])
            assert torch.equal(speculated.values[:, :, :, tokens], straight.values[:, :, :, tokens])


@torch.no_grad()
def test_rollback_refuses_what_it_cannot_undo():
    model = random_model(max_frames=4)
    latents, levels, actions = random_inputs(model, batch=1, frames=10)
    cache = model.new_cache(1, extra_frames=2)
    step_through(model, cache, latents, levels, actions)
    with pytest.raises(ValueError, match="cannot roll back to frame 11: 10 frames committed"):
        cache.rollback(11)
    with pytest.raises(ValueError, match="window was overwritten.*frame 8 at the earliest"):
        cache.rollback(7)
    cache.rollback(8)
    cache.reset()
    assert cache.num_frames == 0 and set(cache.slot_frames) == {-1}


@torch.no_grad()
def test_cache_misuse_is_named():
    model = random_model(max_frames=4, sink_frames=1)
    latents, levels, actions = random_inputs(model, batch=2, frames=5)
    with pytest.raises(ValueError, match="batch size 2 does not match the cache's 1"):
        model.forward_step(latents, levels, actions, model.new_cache(1))
    with pytest.raises(ValueError, match="commit the 1 sink frame"):
        model.forward_step(latents, levels, actions, model.new_cache(2))
    cache = model.new_cache(2)
    step_through(model, cache, latents[:, :1], levels[:, :1], actions[:, :1])
    with pytest.raises(ValueError, match="cannot commit 3 frames at once: the ring holds 2"):
        model.forward_step(latents[:, 1:4], levels[:, 1:4], actions[:, 1:4], cache, write=True)
    assert cache.num_frames == 1
    other = random_model(max_frames=6)
    with pytest.raises(ValueError, match="was not made by this model"):
        model.forward_step(latents[:, :1], levels[:, :1], actions[:, :1], other.new_cache(2))
    reads_previous = random_model(max_frames=4, sink_frames=1, previous_frame_input=True)
    with pytest.raises(ValueError, match="keeps no frame latents; this model needs them"):
        reads_previous.forward_step(latents[:, :1], levels[:, :1], actions[:, :1], model.new_cache(2))
    with pytest.raises(ValueError, match="does not hold the latent of frame 0"):
        reads_previous.new_cache(2).latent_of(0)


@torch.no_grad()
@pytest.mark.parametrize("previous", [False, True])
def test_committing_a_frame_fused_with_the_next_step_equals_two_calls(previous):
    model = random_model(max_frames=4, sink_frames=1, previous_frame_input=previous)
    latents, levels, actions = random_inputs(model, batch=1, frames=8)
    separate, fused = model.new_cache(1), model.new_cache(1)
    step_through(model, separate, latents[:, :5], levels[:, :5], actions[:, :5])
    step_through(model, fused, latents[:, :4], levels[:, :4], actions[:, :4])
    expected_next = model.forward_step(latents[:, 5:6], levels[:, 5:6], actions[:, 5:6], separate)
    both = model.forward_step(
        latents[:, 4:6], levels[:, 4:6], actions[:, 4:6], fused, write=True, write_count=1
    )
    assert fused.num_frames == separate.num_frames == 5
    # the same numbers up to float rounding (matmuls over 2 frames' tokens instead of 1 block differently)
    assert torch.allclose(fused.keys, separate.keys, atol=1e-5)
    assert torch.allclose(fused.values, separate.values, atol=1e-5)
    assert (both[:, 1:] - expected_next).abs().max() < 1e-5
    with pytest.raises(ValueError, match=r"write_count must be in \[0, 2\]"):
        model.forward_step(latents[:, 4:6], levels[:, 4:6], actions[:, 4:6], fused, write=True, write_count=3)
