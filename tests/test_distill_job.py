"""The distillation job end to end on a tiny teacher: the student's 1-step error against the teacher
goes down, the export is a distilled model directory the engine plays, resume is exact, and the
sCM / adversarial / guidance / self-rollout switches run."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import import_script, make_model_dir, write_smooth_episodes
from safetensors.torch import load_file

from gameworld.actions import Action
from gameworld.data import ClipDataset
from gameworld.engine import WorldEngine
from gameworld.modeldir import load_model_dir, read_config
from training import distill
from training.config import ConfigError, load_config
from training.distributed import DistEnv
from training.train import DataConfig

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "training" / "configs" / "distill_smoke.yaml"
pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A tiny random-weight teacher directory and latent shards made with its tokenizer."""
    root = tmp_path_factory.mktemp("distill")
    teacher = make_model_dir(root / "teacher", max_frames=4)
    write_smooth_episodes(root / "episodes", 4, seed=0)
    encode_latents = import_script(ROOT / "datasets" / "encode_latents.py")
    argv = ["--episodes", str(root / "episodes"), "--tokenizer", str(teacher / "tokenizer"),
            "--out", str(root / "latents")]
    assert encode_latents.main(argv) == 0
    return root


def job(data: Path, out: Path, *extra: str) -> distill.DistillJob:
    overrides = [f"teacher={data / 'teacher'}", f"data.shards={data / 'latents'}", f"train.out_dir={out}",
                 "validation.clips=0", *extra]
    return load_config(distill.DistillJob, SMOKE, overrides)


def one_step_error(student_dir: Path, data: Path) -> float:
    _, _, teacher = load_model_dir(data / "teacher")
    _, _, student = load_model_dir(student_dir)
    clips = ClipDataset(data / "latents", clip_len=4, shuffle=False)
    latents, actions = zip(*(clips[i] for i in range(8)), strict=True)
    errors = distill.student_teacher_error(student, teacher, torch.stack(latents).float(),
                                           torch.stack(actions), [1], teacher_steps=16, context_noise=0.02)
    return errors[1]


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_distillation_lowers_the_one_step_error_and_exports_a_distilled_model(data, tmp_path):
    out = tmp_path / "run"
    cfg = job(data, out, "train.max_steps=20", "train.optim.lr=1e-3", f"validation.shards={data / 'latents'}",
              "validation.clips=4", f"validation.episodes={data / 'episodes'}")
    student_dir = distill.run(cfg, DistEnv())
    before, after = one_step_error(data / "teacher", data), one_step_error(student_dir, data)
    print(f"1-step error against the teacher: {before:.5f} -> {after:.5f}")
    assert after < 0.8 * before, (before, after)

    (val,) = [m for m in metrics(out) if "val/student_mse_1" in m]
    assert val["step"] == 20 and val["val/student_mse_1"] > 0 and val["val/rollout_psnr"] > 0
    assert (out / "samples" / "step_000020" / "rollout_0.mp4").is_file()
    config = read_config(student_dir)
    assert config.distilled and config.sampler.steps == 2
    engine = WorldEngine.from_pretrained(student_dir, device="cpu")
    assert engine.settings.steps == 2
    engine.reset(frames=np.zeros((2, 32, 64, 3), np.uint8))
    assert engine.step(Action.of("forward")).shape == (32, 64, 3)
    teacher_weights = load_file(str(data / "teacher" / "world_model" / "diffusion_pytorch_model.safetensors"))
    checkpoint = load_file(str(out / "checkpoints" / "step_000020" / "tensors.safetensors"))
    assert all(torch.equal(checkpoint[f"model/teacher.{k}"], v) for k, v in teacher_weights.items())  # frozen
    assert not any(k.startswith("ema/teacher.") for k in checkpoint)


def test_an_interrupted_distillation_resumes_to_exactly_the_same_losses(data, tmp_path, monkeypatch):
    extra = ("train.max_steps=6", "train.checkpoint_every=3", "self_rollout=0.5", "consistency.method=scm")
    distill.run(job(data, tmp_path / "ref", *extra), DistEnv())
    calls, real_loss = 0, distill.scm_loss

    def crash_on_step_5(*args):
        nonlocal calls
        calls += 1
        if calls == 5:
            raise KeyboardInterrupt
        return real_loss(*args)

    monkeypatch.setattr(distill, "scm_loss", crash_on_step_5)
    with pytest.raises(KeyboardInterrupt):
        distill.run(job(data, tmp_path / "run", *extra), DistEnv())
    monkeypatch.setattr(distill, "scm_loss", real_loss)
    distill.run(job(data, tmp_path / "run", *extra), DistEnv())
    losses = lambda out: [(m["step"], m["train/loss"]) for m in metrics(out) if "train/loss" in m]  # noqa: E731
    assert losses(tmp_path / "run") == losses(tmp_path / "ref")


@pytest.mark.parametrize(
    "extra", [("consistency.method=scm",), ("adversarial.weight=0.1",), ("consistency.guidance=2.0",)]
)
def test_scm_adversarial_and_guided_variants_train(data, tmp_path, extra):
    out = tmp_path / "run"
    distill.run(job(data, out, "train.max_steps=3", *extra), DistEnv())
    logged = [m for m in metrics(out) if "train/loss" in m]
    assert len(logged) == 3 and all(np.isfinite(m["train/loss"]) for m in logged)
    if "adversarial.weight=0.1" in extra:
        assert all("train/critic" in m and "train/generator" in m for m in logged)
        checkpoint = load_file(str(out / "checkpoints" / "step_000003" / "tensors.safetensors"))
        assert any(k.startswith("ema/critic.") for k in checkpoint)


def test_a_teacher_that_does_not_fit_the_shards_or_a_step_count_mismatch_is_a_clear_error(data, tmp_path):
    cfg = job(data, tmp_path / "run", "data.clip_len=6")
    assert isinstance(cfg.data, DataConfig)
    with pytest.raises(ValueError, match="longer than the teacher's window"):
        distill.run(cfg, DistEnv())
    with pytest.raises(ConfigError, match="set sampler.steps=2"):
        job(data, tmp_path / "run", "sampler.steps=4")
