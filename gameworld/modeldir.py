"""The model directory: everything `WorldEngine` needs, as JSON and safetensors only.

    <model>/gameworld.json   resolution, fps, action space, context frames, sampler defaults
    <model>/tokenizer/       FrameTokenizer (diffusers config.json + safetensors)
    <model>/world_model/     NextFrameDiT (config.json + safetensors: EMA weights or the distilled student)
    <model>/idm/             optional inverse dynamics model used by evaluation
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from gameworld.actions import ActionSpace
from gameworld.atomic import staged_directory, write_text_atomic

if TYPE_CHECKING:
    from gameworld.models.dit import NextFrameDiT
    from gameworld.models.tokenizer import FrameTokenizer

CONFIG_NAME = "gameworld.json"
PACKAGED_MODELS = Path(__file__).parent / "pretrained"


@dataclass
class SamplerDefaults:
    """How the world model was meant to be sampled (a distilled student says 1-4 steps here)."""

    steps: int = 4
    sampler: str = "euler"
    shift: float = 1.0
    context_noise: float = 0.02
    guidance: float = 1.0
    temperature: float = 1.0
    motion_prior: float | None = None  # start level from the moved last frame (needs motion_prior.json)
    still_level: float | None = None  # with the motion prior: a still frame's start level from the rest frame


@dataclass
class GameWorldConfig:
    """`gameworld.json`: what a front end must know to drive a model directory."""

    width: int
    height: int
    fps: int = 20
    context_frames: int = 16
    action_space: dict = field(default_factory=lambda: ActionSpace.minecraft().to_dict())
    sampler: SamplerDefaults = field(default_factory=SamplerDefaults)
    distilled: bool = False
    description: str = ""

    @property
    def space(self) -> ActionSpace:
        return ActionSpace.from_dict(self.action_space)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict, source: str = CONFIG_NAME) -> GameWorldConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown field(s) {unknown}; known: {sorted(known)}")
        data = dict(data)
        try:
            data["sampler"] = SamplerDefaults(**data.get("sampler", {}))
            config = cls(**data)
            ActionSpace.from_dict(config.action_space)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: {err}") from err
        return config


def resolve_model_dir(name_or_path: str | os.PathLike) -> Path:
    """A path to a model directory, or the name of one shipped in `gameworld/pretrained/`."""
    path = Path(name_or_path)
    if not (path / CONFIG_NAME).is_file() and (PACKAGED_MODELS / str(name_or_path) / CONFIG_NAME).is_file():
        path = PACKAGED_MODELS / str(name_or_path)
    if not (path / CONFIG_NAME).is_file():
        shipped = sorted(p.name for p in PACKAGED_MODELS.glob("*") if (p / CONFIG_NAME).is_file())
        raise FileNotFoundError(
            f"{name_or_path}: not a model directory (no {CONFIG_NAME}); shipped models: {shipped or 'none'}"
        )
    return path


def read_config(model_dir: str | os.PathLike) -> GameWorldConfig:
    path = resolve_model_dir(model_dir) / CONFIG_NAME
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return GameWorldConfig.from_dict(data, source=str(path))


def write_config(model_dir: str | os.PathLike, config: GameWorldConfig) -> Path:
    """Write `gameworld.json` atomically (temporary name, then rename)."""
    target = Path(model_dir) / CONFIG_NAME
    write_text_atomic(target, config.to_json())
    return target


def save_model_dir(
    model_dir: str | os.PathLike,
    config: GameWorldConfig,
    tokenizer: FrameTokenizer,
    world_model: NextFrameDiT,
) -> Path:
    """Write a whole model directory under a temporary name, then swap it into place.

    Parts another tool added (such as `idm/`) are carried over from the directory being replaced.
    """
    target = Path(model_dir)
    with staged_directory(target) as staging:
        tokenizer.save_pretrained(staging / "tokenizer")
        world_model.save_pretrained(staging / "world_model")
        write_config(staging, config)
        for extra in target.iterdir() if target.exists() else ():
            if (staging / extra.name).exists():
                continue
            if extra.is_dir():
                shutil.copytree(extra, staging / extra.name)
            else:
                shutil.copy2(extra, staging)
    return target


def load_model_dir(
    model_dir: str | os.PathLike, device: str | None = None
) -> tuple[GameWorldConfig, FrameTokenizer, NextFrameDiT]:
    """Config, tokenizer and world model of a model directory (or shipped model name), in eval mode."""
    from gameworld.models.dit import NextFrameDiT
    from gameworld.models.tokenizer import FrameTokenizer

    path = resolve_model_dir(model_dir)
    config = read_config(path)
    for part in ("tokenizer", "world_model"):
        if not (path / part).is_dir():
            raise FileNotFoundError(f"{path}: model directory has no {part}/")
    tokenizer = FrameTokenizer.from_pretrained(path / "tokenizer")
    world_model = NextFrameDiT.from_pretrained(path / "world_model")
    if device is not None:
        tokenizer.to(device)
        world_model.to(device)
    world_model.eval()
    return config, tokenizer, world_model
