"""Checkpoints: nested state round trips, RNG capture, atomic step directories, verification, pruning."""

import random
import warnings

import numpy as np
import pytest
import torch

from training.checkpoint import (
    MARKER_FILE,
    TENSORS_FILE,
    CheckpointError,
    CheckpointManager,
    capture_rng,
    flatten,
    restore_rng,
    unflatten,
)


def test_nested_state_round_trips_through_tensors_and_json():
    import json

    state = {
        "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(2, 3)}, 1: {}},
        "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.95), "params": ["a.weight", "b"], "fused": None}],
    }
    tensors = {}
    structure = json.loads(json.dumps(flatten(state, "optim", tensors)))  # must survive JSON
    back = unflatten(structure, tensors)
    assert set(back["state"]) == {0, 1} and back["state"][1] == {}
    assert torch.equal(back["state"][0]["exp_avg"], state["state"][0]["exp_avg"])
    assert back["param_groups"][0]["betas"] == (0.9, 0.95)
    assert back["param_groups"] == state["param_groups"]
    with pytest.raises(TypeError, match="cannot store a set"):
        flatten({"x": {1, 2}}, "p", {})


def test_rng_states_restore_exactly():
    generator = torch.Generator().manual_seed(5)
    saved = capture_rng({"g": generator})
    first = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(3, generator=generator))
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    generator.manual_seed(99)
    restore_rng(saved, {"g": generator})
    again = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(3, generator=generator))
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert first[2] == again[2] and torch.equal(first[3], again[3])


def save(manager: CheckpointManager, step: int):
    tensors = {"model/w": torch.full((4,), float(step))}
    return manager.save(step, tensors, {"data": {"epoch": 0, "batch": step}}, {"seed": step})


def test_save_writes_a_complete_directory_and_keeps_the_last_k(tmp_path):
    manager = CheckpointManager(tmp_path, keep=2)
    for step in (10, 20, 30):
        save(manager, step)
    assert [c.step for c in manager.checkpoints()] == [20, 30]
    latest = manager.latest()
    assert latest.step == 30 and latest.state()["data"]["batch"] == 30 and latest.rng(0) == {"seed": 30}
    assert torch.equal(latest.tensors()["model/w"], torch.full((4,), 30.0))
    assert latest.rng(1) is None
    assert not list(tmp_path.glob(".*"))  # no staging directory left behind


@pytest.mark.parametrize("damage", ["truncate", "flip", "no_marker", "delete_state"])
def test_a_broken_checkpoint_is_skipped_with_a_warning(tmp_path, damage):
    manager = CheckpointManager(tmp_path, keep=3)
    save(manager, 1)
    newest = save(manager, 2)
    tensors = newest / TENSORS_FILE
    if damage == "truncate":
        tensors.write_bytes(tensors.read_bytes()[:-7])
    elif damage == "flip":
        data = bytearray(tensors.read_bytes())
        data[-1] ^= 0xFF  # same size, different contents
        tensors.write_bytes(bytes(data))
    elif damage == "no_marker":
        (newest / MARKER_FILE).unlink()
    else:
        (newest / "state.json").unlink()
    with pytest.warns(RuntimeWarning, match="skipping a broken checkpoint"):
        latest = manager.latest()
    assert latest.step == 1
    with pytest.raises(CheckpointError):
        next(c for c in manager.checkpoints() if c.step == 2).verify()


def test_resaving_a_step_replaces_a_broken_directory_and_abandoned_staging_is_ignored(tmp_path):
    manager = CheckpointManager(tmp_path, keep=3)
    broken = save(manager, 5)
    (broken / MARKER_FILE).unlink()
    (tmp_path / ".step_000006.staging").mkdir()  # a job killed while writing step 6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [c.step for c in manager.checkpoints()] == [5]
        save(manager, 5)
        assert manager.latest().step == 5
    assert not (tmp_path / ".step_000006.staging").exists()


def test_keep_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="keep"):
        CheckpointManager(tmp_path, keep=0)
