"""A window shorter than the model's max_frames, chosen at inference (`new_cache(window_frames=...)`)."""

import numpy as np
import pytest
import torch
from conftest import make_model_dir
from test_model_dit import random_inputs, random_model

from gameworld.actions import Action
from gameworld.engine import WorldEngine


@torch.no_grad()
@pytest.mark.parametrize("sinks", [0, 1])
def test_a_shorter_cache_window_equals_a_model_built_with_that_window(sinks):
    long, short = random_model(max_frames=8, sink_frames=sinks), random_model(max_frames=4, sink_frames=sinks)
    short.load_state_dict(long.state_dict())
    latents, levels, actions = random_inputs(long, batch=1, frames=10)
    caches = long.new_cache(1, window_frames=4), short.new_cache(1)
    assert caches[0].window_frames == 4 and caches[0].capacity == caches[1].capacity
    for frame in range(10):
        step = [model.forward_step(latents[:, frame : frame + 1], levels[:, frame : frame + 1],
                                   actions[:, frame : frame + 1], cache, write=True)
                for model, cache in zip((long, short), caches, strict=True)]
        torch.testing.assert_close(step[0], step[1], atol=1e-6, rtol=0)
    full = long.new_cache(1)
    for part in (slice(0, 5), slice(5, 9)):
        long.forward_step(latents[:, part], levels[:, part], actions[:, part], full, write=True)
    last = long.forward_step(latents[:, 9:], levels[:, 9:], actions[:, 9:], full)
    assert not torch.allclose(last, step[0], atol=1e-4)  # frame 9 sees frames 2..9, not 6..9
    with pytest.raises(ValueError, match=rf"window_frames must be in \[{sinks + 2}, 8\]"):
        long.new_cache(1, window_frames=9)
    with pytest.raises(ValueError, match="window_frames must be in"):
        long.new_cache(1, window_frames=sinks + 1)
    with pytest.raises(ValueError, match="was not made by this model"):
        short.forward_step(latents[:, :1], levels[:, :1], actions[:, :1], long.new_cache(1))


def test_the_engine_window_setting_matches_a_model_trained_with_it(tiny_model_dir, tmp_path):
    narrow = make_model_dir(tmp_path / "w4", max_frames=4)  # the same weights (same seed), window 4
    script = [Action.of("forward")] * 4 + [Action.of("jump", camera=(2, 0))] * 4
    a = WorldEngine.from_pretrained(tiny_model_dir, device="cpu", steps=1, window=4)
    b = WorldEngine.from_pretrained(narrow, device="cpu", steps=1)
    assert a.stream.window == b.stream.window == 4
    a.reset(), b.reset()
    assert np.array_equal(a.rollout(script), b.rollout(script))
    with pytest.raises(ValueError, match=r"window 7: this world model attends to 2..6 frames"):
        WorldEngine.from_pretrained(tiny_model_dir, device="cpu", window=7)


def test_the_window_can_change_between_steps(tiny_model_dir):
    eng = WorldEngine.from_pretrained(tiny_model_dir, device="cpu", steps=1)
    eng.reset()
    eng.rollout([Action.of("forward")] * 6)
    eng.configure(window=3)
    assert eng.stream.window == 3 and eng.num_frames == 7 and len(eng.stream.context()[0][0]) == 2
    eng.rollout([Action.of("forward")] * 2)
    with pytest.raises(ValueError, match="window_frames must be in"):
        eng.configure(window=9)
    assert eng.settings.window == 3 and eng.stream.window == 3  # a refused change changes nothing
