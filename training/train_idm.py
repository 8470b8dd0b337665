"""Train the inverse dynamics model (IDM) that scores controllability, on voxel episodes.

    python datasets/generate.py --out data/idm_train/controls --episodes 192 --frames 400 --size 192x108 \\
        --seed 200000 --player controls
    python datasets/generate.py --out data/idm_train/default --episodes 384 --frames 400 --size 192x108 \\
        --seed 200000
    python datasets/generate.py --out data/idm_val --episodes 16 --frames 400 --size 192x108 --seed 300000
    python -m training.train_idm --config training/configs/idm_default.yaml \\
        data.episodes=data/idm_train validation.episodes=data/idm_val out=MODEL_DIR/idm

The IDM reads a clip of frames and says, for every tick, which of forward/back, left/right,
jump and attack were held and where the camera turned (see `gameworld.models.idm`), and learns
beside them the player's travel that the recorded poses show (`loss.travel`). Frames are blurred,
noised and colour-shifted at random while training, so that the IDM also reads the softer frames
of a world model, and half the clips are mirrored left to right with their actions
(`augment.mirror`); the rare classes weigh more in the loss (`loss.balance`). The "controls" player
holds the evaluation's key and camera combinations half of the time and the default player plays
naturally; the IDM learns from both (the episodes are found in every folder under
`data.episodes`), and the held-out episodes are natural play in other worlds. Held-out
accuracy per key group and camera direction is logged at each validation and written to
`<out>/held_out_accuracy.json` beside the exported IDM.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from tqdm import tqdm

from gameworld.actions import ActionSpace
from gameworld.atomic import write_text_atomic
from gameworld.data import find_episodes, open_episode
from gameworld.metrics.controls import (
    GROUPS,
    actions_as_made,
    labels_from_encoded,
    reading_scores,
    recorded_poses,
    travel_of_poses,
)
from gameworld.models.idm import IDM_REPORT, InverseDynamicsModel, class_weights, idm_loss, mirror
from training import distributed
from training.config import to_dict
from training.distributed import DistEnv
from training.job import run_job
from training.trainer import Trainer, TrainerConfig


@dataclass
class IDMDataConfig:
    episodes: str = "data/idm_train"  # folder of voxel episodes
    clip_len: int = 32
    stride: int | None = 16


@dataclass
class AugmentConfig:
    blur: float = 0.5  # chance of a box blur of a random size per clip
    noise: float = 8.0  # largest Gaussian noise std (0..255 scale)
    colour: float = 0.1  # largest per-channel gain change
    mirror: float = 0.5  # chance of a clip mirrored left to right, its actions with it


@dataclass
class IDMLoss:
    balance: float = 0.5  # class weights of the cross-entropies: frequency ** -balance (0: plain)
    travel: float = 1.0  # weight of the travel regression (episodes with poses; 0: off)


@dataclass
class IDMValidation:
    episodes: str | None = None  # held-out episodes
    clips: int = 32
    clip_len: int = 64


@dataclass
class IDMJob:
    out: str | None = None  # IDM directory to write; default <train.out_dir>/idm
    model: dict = field(default_factory=dict)  # InverseDynamicsModel fields (width, height, ...)
    data: IDMDataConfig = field(default_factory=IDMDataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: IDMLoss = field(default_factory=IDMLoss)
    validation: IDMValidation = field(default_factory=IDMValidation)
    train: TrainerConfig = field(default_factory=TrainerConfig)


class SmallClips(torch.utils.data.Dataset):
    """Clips of episodes decoded once and kept in memory at the IDM's frame size.

    Item i: `(frames uint8 [T, h, w, 3], actions float32 [T, A], travel float32 [T, 3])`, the camera
    turns as the game made them (`actions_as_made`), the travel as the poses show it (`travel_of`).
    The order of an epoch is a seeded shuffle of all clips (`set_epoch`), dealt out to the ranks like
    `ClipDataset`'s.
    """

    def __init__(self, source: str, clip_len: int, stride: int | None, size: tuple[int, int], *,
                 seed: int = 0, rank: int = 0, world_size: int = 1, shuffle: bool = True) -> None:
        paths = find_episodes(source)
        if not paths:
            raise ValueError(f"{source}: no episodes found")
        self.space = open_episode(paths[0]).space
        self.frames, self.actions, self.travel, self.clips = [], [], [], []
        for path in tqdm(paths, desc=f"reading {source}", unit="episode", disable=rank != 0):
            episode = open_episode(path)
            if episode.space.to_dict() != self.space.to_dict():
                raise ValueError(f"{path}: its action space differs from {paths[0]}'s")
            frames = torch.from_numpy(episode.read_frames(0, len(episode)))  # [T, H, W, 3]
            images = F.interpolate(frames.permute(0, 3, 1, 2).float(), size=(size[1], size[0]), mode="area")
            number = len(self.frames)
            self.frames.append(images.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous())
            self.actions.append(self.space.encode(actions_as_made(episode.actions, episode.extras)))  # [T, A]
            self.travel.append(torch.from_numpy(travel_of(episode.extras, len(episode))))  # [T, 3]
            self.clips += [(number, s) for s in range(0, len(episode) - clip_len + 1, stride or clip_len)]
        if not self.clips:
            raise ValueError(f"no episode in {source} has {clip_len} frames")
        self.clip_len, self.seed, self.shuffle = clip_len, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        order = np.arange(len(self.clips))
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.clips))
        per_rank = len(order) // self.world_size
        self.order = order[: per_rank * self.world_size][self.rank :: self.world_size]

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        episode, start = self.clips[self.order[index]]
        stop = start + self.clip_len
        return (self.frames[episode][start:stop], self.actions[episode][start:stop],
                self.travel[episode][start:stop])


def travel_of(extras: list[dict], frames: int) -> np.ndarray:
    """float32 [T, 3]: `travel_of_poses` where every frame has a pose (voxel episodes), else NaN."""
    poses = recorded_poses(extras)
    if poses is not None and len(poses) == frames:
        return travel_of_poses(poses)
    return np.full((frames, 3), np.nan, np.float32)


def batch_labels(
    actions: torch.Tensor, space: ActionSpace, travel: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Encoded actions [B, T, A] (and travel [B, T, 3]) -> training targets {head: [B, T-1]}
    (camera_deg [B, T-1, 2], travel [B, T-1, 3])."""
    per_clip = [labels_from_encoded(clip, space) for clip in actions]
    out = {name: torch.from_numpy(np.stack([getattr(c, name)[1:] for c in per_clip]))
           for name in ("move", "strafe", "jump", "attack", "camera_deg")}
    if travel is not None:
        out["travel"] = travel[:, 1:]
    return {k: v.to(actions.device) for k, v in out.items()}


def mirror_some(
    frames: torch.Tensor, labels: dict[str, torch.Tensor], chance: float, generator: torch.Generator
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Mirror each clip of frames [B, T, H, W, 3] left to right with probability `chance`, and its
    labels {name: [B, T-1, ...]} with it (`gameworld.models.idm.mirror`)."""
    flip = torch.rand(frames.shape[0], generator=generator, device=frames.device) < chance  # [B]
    frames = torch.where(flip[:, None, None, None, None], frames.flip(3), frames)
    mirrored = mirror(labels)
    labels = {name: torch.where(flip.view(-1, *[1] * (value.ndim - 1)), mirrored[name], value)
              for name, value in labels.items()}
    return frames, labels


def dataset_class_weights(clips: SmallClips, balance: float) -> dict[str, torch.Tensor]:
    """`class_weights` of every transition of every training episode."""
    per_episode = [batch_labels(actions[None], clips.space) for actions in clips.actions]
    joined = {name: torch.cat([labels[name] for labels in per_episode], dim=1) for name in per_episode[0]}
    return class_weights(joined, balance)


def augment(frames: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """uint8 [B, T, H, W, 3] -> float [B, T, H, W, 3] in 0..255 with one random blur, gain and
    noise level per clip (the same for all its frames, as a world model's softness is)."""
    b = frames.shape[0]
    device = frames.device
    rand = lambda *shape: torch.rand(*shape, generator=generator, device=device)  # noqa: E731
    x = frames.float()
    gains = 1 + cfg.colour * (2 * rand(b, 1, 1, 1, 3) - 1)
    x = x * gains
    blurred = []
    for clip, chance in zip(x, rand(b), strict=True):
        if chance < cfg.blur:
            size = 3 if rand(1) < 0.5 else 5
            images = clip.permute(0, 3, 1, 2)  # [T, 3, H, W]
            images = F.avg_pool2d(F.pad(images, [size // 2] * 4, mode="replicate"), size, stride=1)
            clip = images.permute(0, 2, 3, 1)
        blurred.append(clip)
    x = torch.stack(blurred)
    sigma = cfg.noise * rand(b, 1, 1, 1, 1)
    x = x + sigma * torch.randn(x.shape, generator=generator, device=device)
    return x.clamp(0, 255)


class HeldOutAccuracy:
    """Validation: IDM accuracy per group on held-out episodes (rank 0)."""

    def __init__(self, cfg: IDMJob) -> None:
        self.cfg, self.clips = cfg, []
        self.model_config = dict(InverseDynamicsModel(**cfg.model).config)
        if cfg.validation.episodes:
            size = (self.model_config["width"], self.model_config["height"])
            data = SmallClips(cfg.validation.episodes, cfg.validation.clip_len, None, size)
            for index in range(min(cfg.validation.clips, len(data))):
                frames, actions, _ = data[index]
                self.clips.append((frames.numpy(), labels_from_encoded(actions, data.space)))

    def eval_idm(self, trainer: Trainer) -> InverseDynamicsModel:
        idm = InverseDynamicsModel(**self.cfg.model)
        idm.load_state_dict(trainer.ema_state_dict())
        return idm.to(trainer.device).eval()

    def __call__(self, trainer: Trainer) -> dict[str, float]:
        if not self.clips or not trainer.env.is_main:
            return {}
        idm = self.eval_idm(trainer)
        self.last = reading_scores([idm.predict(frames[None])[0] for frames, _ in self.clips],
                                   [labels for _, labels in self.clips])
        out = {f"acc_{name}": self.last[name]["accuracy"] for name in GROUPS}
        out.update({f"balanced_{name}": self.last[name]["balanced"] for name in GROUPS})
        return out


def run(cfg: IDMJob, env: DistEnv) -> Path | None:
    """Train (or resume) and export; returns the IDM directory, or None when stopped by a signal."""
    torch.manual_seed(cfg.train.seed)
    idm = InverseDynamicsModel(**cfg.model)
    clips = SmallClips(cfg.data.episodes, cfg.data.clip_len, cfg.data.stride,
                       (idm.config.width, idm.config.height), seed=cfg.train.seed, rank=env.rank,
                       world_size=env.world_size)
    space = clips.space
    weights = {k: v.to(env.device) for k, v in dataset_class_weights(clips, cfg.loss.balance).items()}

    def loss(model, batch, generator):
        frames, actions, travel = batch  # uint8 [B, T, H, W, 3], float [B, T, A], float [B, T, 3]
        frames = augment(frames.to(env.device), cfg.augment, generator)
        labels = batch_labels(actions.to(env.device), space, travel.to(env.device))
        frames, labels = mirror_some(frames, labels, cfg.augment.mirror, generator)
        return idm_loss(model(frames), labels, weights, cfg.loss.travel)

    trainer = Trainer(cfg.train, idm, clips, loss, env, config=to_dict(cfg))
    if env.is_main:
        write_text_atomic(trainer.out_dir / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    validation = HeldOutAccuracy(cfg)
    if not trainer.fit(validate=validation):
        return None
    out = Path(cfg.out or trainer.out_dir / "idm")
    if env.is_main:
        validation.eval_idm(trainer).cpu().save_pretrained(out)
        report = {
            "held_out": getattr(validation, "last", None), "steps": trainer.step,
            "train_episodes": len(clips.frames), "train_clips": len(clips), "clip_len": cfg.data.clip_len,
            "validation_episodes": cfg.validation.episodes,
        }
        write_text_atomic(out / IDM_REPORT, json.dumps(report, indent=2) + "\n")
        print(f"IDM written to {out}", file=sys.stderr)
    distributed.barrier(env)
    return out


def main(argv: list[str] | None = None) -> int:
    return run_job("train_idm", argv, IDMJob, run, __doc__, "training/configs/idm_default.yaml")


if __name__ == "__main__":
    sys.exit(main())
