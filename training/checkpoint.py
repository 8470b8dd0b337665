"""Checkpoints: one directory per step, tensors in safetensors, everything else in JSON.

    <out>/checkpoints/step_000500/
        tensors.safetensors   model/*, ema/*, optim/* (full tensors, written by rank 0)
        state.json            step, data position, optimizer structure, config (rank 0)
        rng_rank<r>.json      each process's torch / CUDA / numpy / python / generator RNG states
        complete.json         written last: size and sha256 of every file above

A checkpoint is written into a hidden staging directory and renamed into place only when
complete, so a job killed at any moment leaves either the whole checkpoint or none. On resume
every candidate is verified against `complete.json` (a truncated or altered file fails); a
broken one is skipped with a warning and the one before it is used. No pickle anywhere:
nested state (such as an optimizer's) is split into tensors plus a JSON structure naming them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

TENSORS_FILE = "tensors.safetensors"
STATE_FILE = "state.json"
MARKER_FILE = "complete.json"
STEP_DIR = re.compile(r"^step_(\d+)$")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file and what is wrong."""


# ---------------------------------------------------------------------------------- nested state


def flatten(value: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """A JSON structure for a nested state; its tensors go into `tensors` under names from `prefix`.

    dicts become {"dict": [[key, value], ...]} (keys may be ints), lists {"list": [...]}, tuples
    {"tuple": [...]}, tensors {"tensor": name}; numbers, strings, bools and None stay as they are.
    """
    if torch.is_tensor(value):
        tensors[prefix] = value.detach().cpu().contiguous().clone()
        return {"tensor": prefix}
    if isinstance(value, dict):
        return {"dict": [[k, flatten(v, f"{prefix}/{k}", tensors)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        kind = "list" if isinstance(value, list) else "tuple"
        return {kind: [flatten(v, f"{prefix}/{i}", tensors) for i, v in enumerate(value)]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{prefix}: cannot store a {type(value).__name__} in a checkpoint")


def unflatten(structure: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of `flatten`."""
    if not isinstance(structure, dict):
        return structure
    (kind, body), = structure.items()
    if kind == "tensor":
        return tensors[body]
    if kind == "dict":
        return {k: unflatten(v, tensors) for k, v in body}
    if kind == "list":
        return [unflatten(v, tensors) for v in body]
    if kind == "tuple":
        return tuple(unflatten(v, tensors) for v in body)
    raise ValueError(f"unknown structure node {kind!r}")


# ---------------------------------------------------------------------------------- RNG


def _bytes(tensor: torch.Tensor) -> str:
    return base64.b64encode(tensor.cpu().numpy().tobytes()).decode()


def _tensor(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)


def capture_rng(generators: dict[str, torch.Generator]) -> dict:
    """Every random state of this process, as JSON: torch, CUDA, numpy, python, named generators."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, state, gauss = random.getstate()
    return {
        "torch": _bytes(torch.get_rng_state()),
        "cuda": [_bytes(s) for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
        "numpy": {"name": name, "keys": keys.tolist(), "pos": pos, "has_gauss": has_gauss, "cached": cached},
        "python": {"version": version, "state": list(state), "gauss": gauss},
        "generators": {key: _bytes(g.get_state()) for key, g in generators.items()},
    }


def restore_rng(data: dict, generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(_tensor(data["torch"]))
    if data["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_tensor(s) for s in data["cuda"]])
    n = data["numpy"]
    keys = np.array(n["keys"], dtype=np.uint32)
    np.random.set_state((n["name"], keys, n["pos"], n["has_gauss"], n["cached"]))
    p = data["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    for key, generator in generators.items():
        generator.set_state(_tensor(data["generators"][key]))


# ---------------------------------------------------------------------------------- files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_synced(path: Path, write) -> None:
    write(path)
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _write_json(path: Path, data: Any) -> None:
    _write_synced(path, lambda p: p.write_text(json.dumps(data) + "\n"))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot read ({err})") from err


@dataclass
class Checkpoint:
    path: Path
    step: int

    def state(self) -> dict:
        return _read_json(self.path / STATE_FILE)

    def tensors(self) -> dict[str, torch.Tensor]:
        file = self.path / TENSORS_FILE
        try:
            return load_file(str(file))
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"{file}: cannot read the tensors ({err})") from err

    def rng(self, rank: int) -> dict | None:
        """This rank's RNG states, or None when the checkpoint was written by fewer processes."""
        path = self.path / f"rng_rank{rank}.json"
        return _read_json(path) if path.is_file() else None

    def verify(self) -> None:
        """Raise `CheckpointError` unless every file matches the size and hash in the marker."""
        marker = self.path / MARKER_FILE
        if not marker.is_file():
            raise CheckpointError(f"{self.path}: no {MARKER_FILE} (the checkpoint was never finished)")
        files = _read_json(marker).get("files", {})
        for name in (TENSORS_FILE, STATE_FILE):
            if name not in files:
                raise CheckpointError(f"{marker}: does not list {name}")
        for name, expected in files.items():
            path = self.path / name
            if not path.is_file():
                raise CheckpointError(f"{path}: missing")
            size = path.stat().st_size
            if size != expected["bytes"]:
                raise CheckpointError(f"{path}: {size} bytes, expected {expected['bytes']} (truncated?)")
            if _sha256(path) != expected["sha256"]:
                raise CheckpointError(f"{path}: contents do not match the recorded sha256 (corrupt)")


class CheckpointManager:
    """Write, list, verify and prune the step directories under `directory`.

    In a multi-process job every rank calls `save` (each writes its own RNG file) with the same
    step; only rank 0's `tensors` and `state` are written. Calls are collective: pass `barrier`.
    """

    def __init__(self, directory: str | Path, keep: int = 3, rank: int = 0, barrier=lambda: None) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.directory = Path(directory)
        self.keep, self.rank, self.barrier = keep, rank, barrier

    def _staging(self, step: int) -> Path:
        return self.directory / f".step_{step:06d}.staging"

    def save(self, step: int, tensors: dict[str, torch.Tensor], state: dict, rng: dict) -> Path:
        target, staging = self.directory / f"step_{step:06d}", self._staging(step)
        if self.rank == 0:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
        self.barrier()
        _write_json(staging / f"rng_rank{self.rank}.json", rng)
        if self.rank == 0:
            header = {"step": str(step)}
            _write_synced(staging / TENSORS_FILE, lambda p: save_file(tensors, str(p), metadata=header))
            _write_json(staging / STATE_FILE, {**state, "step": step})
        self.barrier()
        if self.rank == 0:
            files = {
                p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in sorted(staging.iterdir())
            }
            _write_json(staging / MARKER_FILE, {"step": step, "files": files})
            if target.exists():  # a stale or broken checkpoint of the same step (e.g. before a resume)
                shutil.rmtree(target)
            os.replace(staging, target)
            self.prune()
        self.barrier()
        return target

    def checkpoints(self) -> list[Checkpoint]:
        """Finished-looking step directories, oldest first (not yet verified)."""
        if not self.directory.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.directory.iterdir() if (m := STEP_DIR.match(p.name))]
        return [Checkpoint(path, step) for step, path in sorted(found)]

    def latest(self) -> Checkpoint | None:
        """The newest checkpoint that verifies; broken ones are skipped with a warning."""
        for checkpoint in reversed(self.checkpoints()):
            try:
                checkpoint.verify()
            except CheckpointError as err:
                warnings.warn(f"skipping a broken checkpoint: {err}", RuntimeWarning, stacklevel=2)
                continue
            return checkpoint
        return None

    def prune(self) -> None:
        """Keep the newest `keep` checkpoints; remove older ones and abandoned staging directories."""
        for checkpoint in self.checkpoints()[: -self.keep]:
            shutil.rmtree(checkpoint.path, ignore_errors=True)
        for staging in self.directory.glob(".step_*.staging"):
            shutil.rmtree(staging, ignore_errors=True)
