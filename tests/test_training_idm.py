"""training.train_idm: the job runs end to end on voxel episodes, weighs rare classes up, learns the
travel the poses show and mirrors clips with their labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gameworld.actions import Action
from gameworld.data import find_episodes, open_episode
from gameworld.metrics.controls import CAMERA_CLASS_NAMES, actions_as_made, travel_of_poses
from gameworld.models.idm import InverseDynamicsModel, mirror
from gameworld.voxel.episodes import write_voxel_episode
from training import train_idm

SMOKE = Path(__file__).resolve().parents[1] / "training" / "configs" / "idm_smoke.yaml"


@pytest.fixture(scope="module")
def episodes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("idm_episodes")
    for i, biome in enumerate(("plains", "forest")):
        write_voxel_episode(root / "train" / f"ep{i}", seed=i, biome=biome, frames=48, width=64, height=36,
                            player_seed=i, lossless=True, player="controls")
    write_voxel_episode(root / "val" / "ep0", seed=9, biome="plains", frames=48, width=64, height=36,
                        player_seed=9, lossless=True)
    return root


def test_dataset_class_weights_lift_the_rare_classes(episodes):
    clips = train_idm.SmallClips(str(episodes / "train"), 8, 8, (48, 27))
    weights = train_idm.dataset_class_weights(clips, balance=1.0)
    labels = [train_idm.batch_labels(a[None], clips.space)["move"] for a in clips.actions]
    counts = torch.bincount(torch.cat(labels, dim=1).flatten(), minlength=3).float()
    seen = counts > 0
    assert seen.sum() >= 2
    # fully balanced: each class seen carries the same total weight
    totals = (weights["move"] * counts)[seen]
    torch.testing.assert_close(totals, torch.full_like(totals, totals[0].item()))
    plain = train_idm.dataset_class_weights(clips, balance=0.0)
    assert torch.allclose(plain["move"], torch.ones(3))


def test_camera_labels_are_the_turns_the_poses_show_where_the_pitch_stops():
    held_up = [Action.null()] + [Action.of("forward", camera=(-5.0, 2.0))] * 3
    poses = [{"pitch": -82.0, "yaw": 10.0}, {"pitch": -87.0, "yaw": 12.0}, {"pitch": -90.0, "yaw": 14.0},
             {"pitch": -90.0, "yaw": 16.0}]
    made = actions_as_made(held_up, [{"pose": pose} for pose in poses])
    assert [a.camera for a in made] == [(0.0, 0.0), (-5.0, 2.0), (-3.0, 2.0), (0.0, 2.0)]
    assert all(a.keys == b.keys for a, b in zip(made, held_up, strict=True))
    assert actions_as_made(held_up, [{}] * 4) == held_up  # no poses: the actions as they are


def test_clips_carry_the_travel_the_poses_show_and_mirroring_flips_frames_and_labels_together(episodes):
    clips = train_idm.SmallClips(str(episodes / "train"), 8, 8, (48, 27), shuffle=False)
    frames, actions, travel = clips[1]  # frames 8..15 of the first episode
    poses = [extra["pose"] for extra in open_episode(find_episodes(str(episodes / "train"))[0]).extras]
    torch.testing.assert_close(travel, torch.from_numpy(travel_of_poses(poses)[8:16]))
    assert np.isnan(train_idm.travel_of([{}] * 8, 8)).all()  # no poses: no travel to learn from
    labels = train_idm.batch_labels(torch.stack([actions] * 2), clips.space, torch.stack([travel] * 2))
    batch = torch.stack([frames] * 2).float()  # [2, T, H, W, 3]
    generator = torch.Generator().manual_seed(0)
    same, kept = train_idm.mirror_some(batch, labels | {}, 0.0, generator)
    assert torch.equal(same, batch) and all(torch.equal(kept[k], v) for k, v in labels.items())
    flipped, mirrored = train_idm.mirror_some(batch, labels, 1.0, generator)
    assert torch.equal(flipped, batch.flip(3))
    assert all(torch.equal(mirrored[k], v) for k, v in mirror(labels).items())


def test_the_job_trains_validates_and_writes_a_loadable_idm(episodes, tmp_path, capsys):
    out = tmp_path / "idm"
    argv = ["--config", str(SMOKE), f"data.episodes={episodes / 'train'}",
            f"validation.episodes={episodes / 'val'}", "validation.clips=2", "validation.clip_len=16",
            f"train.out_dir={tmp_path / 'run'}", "train.max_steps=4", "train.num_workers=0", f"out={out}"]
    assert train_idm.main(argv) == 0
    report = json.loads((out / "held_out_accuracy.json").read_text())
    assert report["steps"] == 4 and report["train_episodes"] == 2
    directions = report["held_out"].pop("camera_directions")
    margins = report["held_out"].pop("camera_by_margin")
    assert list(margins) == ["0-0.25", "0.25-0.5", "0.5-1", ">=1"]
    assert sum(m["frames"] for m in margins.values()) == 30
    assert set(report["held_out"]) == {"move", "strafe", "jump", "attack", "camera"}
    groups = report["held_out"].values()
    assert all(0.0 <= g["accuracy"] <= 1.0 and g["frames"] == 2 * 15 for g in groups)  # 2 clips, 15 ticks
    assert list(directions) == list(CAMERA_CLASS_NAMES)
    assert sum(d["frames"] for d in directions.values()) == 30
    recalls = [d["recall"] for d in directions.values() if d["frames"]]
    assert report["held_out"]["camera"]["balanced"] == pytest.approx(np.mean(recalls))
    idm = InverseDynamicsModel.from_pretrained(out)
    assert idm.config.width == 48
    (tmp_path / "empty").mkdir()
    assert train_idm.main(["--config", str(SMOKE), f"data.episodes={tmp_path / 'empty'}", f"out={out}"]) == 2
    assert capsys.readouterr().err.endswith(f"train_idm: {tmp_path / 'empty'}: no episodes found\n")
