"""A 10,000-frame rollout runs in flat memory: nothing grows with the length of a rollout."""

import sys

import pytest
from conftest import make_model_dir

from gameworld.actions import Action
from gameworld.engine import WorldEngine


def resident_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the resident size from /proc")
def test_ten_thousand_frames_in_flat_memory(tmp_path):
    model_dir = make_model_dir(tmp_path / "m", width=16, height=16, max_frames=4, hidden_size=32, depth=1)
    eng = WorldEngine.from_pretrained(model_dir, device="cpu", steps=1, speculative=7)
    eng.reset()
    # Held runs of 1..12 frames: speculation, hand-outs and rollbacks all the way.
    keys = ["forward", "left", "jump"] * 700
    script = [Action.of(key) for n, key in enumerate(keys) for _ in range(n % 12 + 1)]
    script = script[:10_000]
    cache_bytes = eng.stream.cache.memory_bytes()
    resident = []
    for start in range(0, 10_000, 1_000):  # the frames themselves are dropped after each chunk
        eng.rollout(script[start : start + 1_000])
        resident.append(resident_mb())
    assert eng.stats.frames == 10_000 and eng.stats.rejected > 0 and eng.stats.accepted > 0
    assert max(resident[1:]) - resident[0] < 8.0, resident
    assert eng.stream.cache.memory_bytes() == cache_bytes
    assert len(eng.stream._recent_entries) <= eng.stream._recent_entries.maxlen == 3 + 7
