"""The world-model job end to end on tiny episodes: smoke training, export, exact resume, broken
checkpoints, and a 2-process DDP run with gloo on the CPU."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import import_script, one_torch_thread, write_smooth_episodes
from safetensors.torch import load_file

from gameworld.actions import Action
from gameworld.data.video import probe_video
from gameworld.engine import WorldEngine
from gameworld.models import FrameTokenizer
from training import train
from training.config import load_config
from training.distributed import DistEnv
from training.rollouts import rollout_psnr

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "training" / "configs" / "smoke.yaml"
pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Episodes (train / val), a random-weight tokenizer, and the latent shards of both splits."""
    root = tmp_path_factory.mktemp("world")
    write_smooth_episodes(root / "train", 6, seed=0)
    write_smooth_episodes(root / "val", 2, seed=100)
    torch.manual_seed(0)
    FrameTokenizer.from_config("dc-f8c8").save_pretrained(root / "tokenizer")
    encode_latents = import_script(ROOT / "datasets" / "encode_latents.py")
    for split in ("train", "val"):
        argv = ["--episodes", str(root / split), "--tokenizer", str(root / "tokenizer"),
                "--out", str(root / f"{split}_latents"), "--episodes-per-shard", "4"]
        with one_torch_thread():
            assert encode_latents.main(argv) == 0
    return root


def smoke_overrides(data: Path, out: Path, *extra: str) -> list[str]:
    return [f"data.shards={data / 'train_latents'}", f"tokenizer={data / 'tokenizer'}",
            f"train.out_dir={out}", *extra]


def smoke(data: Path, out: Path, *extra: str) -> train.WorldModelJob:
    return load_config(train.WorldModelJob, SMOKE, smoke_overrides(data, out, *extra))


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def losses(out: Path) -> dict[int, float]:
    return {m["step"]: m["train/loss"] for m in metrics(out) if "train/loss" in m}


def test_smoke_recipe_learns_validates_and_exports_a_model_the_engine_plays(data, tmp_path):
    out = tmp_path / "run"
    cfg = smoke(data, out, "train.max_steps=30", f"validation.shards={data / 'val_latents'}",
                f"validation.episodes={data / 'val'}")
    model_dir = train.run(cfg, DistEnv())
    history = losses(out)
    assert sorted(history) == list(range(1, 31))
    first, last = np.mean([history[s] for s in range(1, 6)]), np.mean([history[s] for s in range(26, 31)])
    assert last < 0.85 * first, (first, last)

    (val,) = [m for m in metrics(out) if "val/next_frame_loss" in m]
    assert val["step"] == 30 and np.isfinite(val["val/next_frame_loss"]) and val["val/rollout_psnr"] > 0
    assert val["val/copy_last_psnr"] > val["val/rollout_psnr"]  # 30 steps do not beat holding still
    video = probe_video(out / "samples" / "step_000030" / "rollout_0.mp4")
    # generated frames (left) beside the ground truth (right)
    assert (video.width, video.height, video.frame_count) == (128, 32, cfg.validation.frames)

    engine = WorldEngine.from_pretrained(model_dir, device="cpu")
    assert (engine.config.width, engine.config.height, engine.config.context_frames) == (64, 32, 4)
    engine.reset(frames=np.zeros((2, 32, 64, 3), np.uint8))
    assert engine.step(Action.of("forward")).shape == (32, 64, 3)
    exported = load_file(str(model_dir / "world_model" / "diffusion_pytorch_model.safetensors"))
    checkpoint = load_file(str(out / "checkpoints" / "step_000030" / "tensors.safetensors"))
    assert all(torch.equal(value, checkpoint[f"ema/{name}"]) for name, value in exported.items())


def test_latents_of_another_tokenizer_are_refused(data, tmp_path):
    torch.manual_seed(1)
    FrameTokenizer.from_config("dc-f8c8").save_pretrained(tmp_path / "retrained")
    cfg = smoke(data, tmp_path / "run", f"tokenizer={tmp_path / 'retrained'}")
    with pytest.raises(ValueError, match="train_latents: these latents were made by another tokenizer"):
        train.run(cfg, DistEnv())


def test_an_interrupted_run_resumes_to_exactly_the_same_losses(data, tmp_path, monkeypatch):
    extra = ("train.max_steps=10", "train.checkpoint_every=4")
    train.run(smoke(data, tmp_path / "ref", *extra), DistEnv())
    calls = 0
    real_loss = train.flow_matching_loss

    def crash_on_step_7(*args):
        nonlocal calls
        calls += 1
        if calls == 7:
            raise KeyboardInterrupt  # a kill between checkpoints: step 4 is the last one written
        return real_loss(*args)

    monkeypatch.setattr(train, "flow_matching_loss", crash_on_step_7)
    with pytest.raises(KeyboardInterrupt):
        train.run(smoke(data, tmp_path / "run", *extra), DistEnv())
    monkeypatch.setattr(train, "flow_matching_loss", real_loss)
    train.run(smoke(data, tmp_path / "run", *extra), DistEnv())
    assert losses(tmp_path / "run") == losses(tmp_path / "ref")
    reference = load_file(str(tmp_path / "ref" / "checkpoints" / "step_000010" / "tensors.safetensors"))
    resumed = load_file(str(tmp_path / "run" / "checkpoints" / "step_000010" / "tensors.safetensors"))
    assert reference.keys() == resumed.keys()
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)  # model, EMA and optimizer


def test_a_truncated_checkpoint_is_detected_and_the_previous_one_used(data, tmp_path):
    out = tmp_path / "run"
    train.run(smoke(data, out, "train.max_steps=8", "train.checkpoint_every=4"), DistEnv())
    first = losses(out)
    newest = out / "checkpoints" / "step_000008" / "tensors.safetensors"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    with pytest.warns(RuntimeWarning, match="step_000008.*truncated"):
        train.run(smoke(data, out, "train.max_steps=8", "train.checkpoint_every=4"), DistEnv())
    assert losses(out) == first  # steps 5-8 redone from step 4, identically
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_000004", "step_000008"]
    (out / "checkpoints" / "step_000008").joinpath("complete.json").unlink()
    with pytest.warns(RuntimeWarning, match="never finished"):
        assert train.run(smoke(data, out, "train.max_steps=8"), DistEnv()).is_dir()


def test_two_processes_with_gloo_train_on_disjoint_data(data, tmp_path):
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "training.train", "--config", str(SMOKE),
               *smoke_overrides(data, out, "train.max_steps=6", "train.checkpoint_every=3",
                                "train.log_data=true")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # its own process group, so that a timeout stops every rank
    job = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, start_new_session=True)
    try:
        _, stderr = job.communicate(timeout=240)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
    assert job.returncode == 0, stderr[-3000:]
    seen = {}
    for rank in (0, 1):
        lines = [json.loads(line) for line in (out / f"data_rank{rank}.jsonl").read_text().splitlines()]
        assert [line["step"] for line in lines] == list(range(1, 7))
        seen[rank] = [tuple(item) for line in lines for item in line["items"]]  # (episode, first frame)
    epoch_of = lambda items: [items[i : i + 4 * 4] for i in range(0, len(items), 16)]  # noqa: E731
    assert len(seen[0]) == len(seen[1]) == 6 * 4
    # 36 clips: 18 per rank, 4 batches of 4 per epoch. Within an epoch the ranks never share a clip.
    for part0, part1 in zip(epoch_of(seen[0]), epoch_of(seen[1]), strict=True):
        assert not set(part0) & set(part1)
    first_epoch = set(epoch_of(seen[0])[0]) | set(epoch_of(seen[1])[0])
    assert len(first_epoch) == 32
    checkpoint = out / "checkpoints" / "step_000006"
    assert (checkpoint / "rng_rank0.json").is_file() and (checkpoint / "rng_rank1.json").is_file()
    assert json.loads((checkpoint / "state.json").read_text())["world_size"] == 2
    assert (out / "model" / "gameworld.json").is_file()


def test_a_run_can_start_from_a_model_without_the_previous_frame_input(data, tmp_path):
    first = train.run(smoke(data, tmp_path / "plain", "train.max_steps=3"), DistEnv())
    cfg = smoke(data, tmp_path / "continued", "train.max_steps=1", f"model.init_from={first}",
                "model.overrides.previous_frame_input=true")
    clips = train.ClipDataset(cfg.data.shards, cfg.data.clip_len)
    model = train.build_model(cfg, clips)
    source = train.NextFrameDiT.from_pretrained(first / "world_model")
    for name, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name
    assert not model.previous_embed.weight.any() and not model.previous_embed.bias.any()
    continued = train.run(cfg, DistEnv())
    assert train.NextFrameDiT.from_pretrained(continued / "world_model").config.previous_frame_input

    with pytest.raises(ValueError, match="cannot start from this model: hidden_size is 64 there, 32"):
        train.build_model(smoke(data, tmp_path / "other", f"model.init_from={first}",
                                "model.overrides.hidden_size=32", "model.overrides.num_heads=1"), clips)
    with pytest.raises(ValueError, match="reads the previous frame; set model.overrides.previous_frame_in"):
        train.build_model(smoke(data, tmp_path / "back", f"model.init_from={continued}"), clips)


def test_a_run_can_learn_on_the_rollouts_of_another_model(data, tmp_path, monkeypatch):
    roller = train.run(smoke(data, tmp_path / "roller", "train.max_steps=2"), DistEnv())
    seen = []

    def recording_loss(model, latents, actions, cfg, generator, context=None):
        seen.append((latents, context))
        return train_loss(model, latents, actions, cfg, generator, context)

    train_loss = train.flow_matching_loss
    monkeypatch.setattr(train, "flow_matching_loss", recording_loss)
    cfg = smoke(data, tmp_path / "rolled", "train.max_steps=3", f"rollout.model={roller}",
                "rollout.probability=1.0", "rollout.steps=1")
    assert train.run(cfg, DistEnv()) is not None
    assert len(seen) == 3 and all(np.isfinite(list(losses(tmp_path / "rolled").values())))
    for latents, context in seen:  # the roller's frames after the clip's first one
        assert torch.equal(context[:, 0], latents[:, 0])
        assert (context[:, 1:] - latents[:, 1:]).abs().mean() > 0.01

    monkeypatch.setattr(train, "flow_matching_loss", train_loss)
    torch.manual_seed(1)
    FrameTokenizer.from_config("dc-f8c8").save_pretrained(roller / "tokenizer")
    with pytest.raises(ValueError, match="its tokenizer is not the one that encoded the training latents"):
        train.run(smoke(data, tmp_path / "other", f"rollout.model={roller}"), DistEnv())
    with pytest.raises(ValueError, match="rollout needs a probability in"):
        smoke(data, tmp_path / "bad", f"rollout.model={roller}", "rollout.probability=1.5")


class StillEpisode:
    """`frames` copies of one grey frame after `context` of another: what `rollout_psnr` reads."""

    fps = 20.0

    def __init__(self, context_value: int, value: int, context: int, frames: int) -> None:
        values = [context_value] * context + [value] * frames
        self.frames = np.stack([np.full((8, 8, 3), v, np.uint8) for v in values])
        self.actions = [Action() for _ in values]

    def read_frames(self, start: int, stop: int) -> np.ndarray:
        return self.frames[start:stop]


class OffsetEngine:
    """Plays each episode's true future frames plus a fixed offset per episode."""

    def __init__(self, episodes: list, offsets: list[int], context: int) -> None:
        self.futures = [e.frames[context:].astype(int) + o for e, o in zip(episodes, offsets, strict=True)]

    def reset(self, frames, actions) -> None:
        self.current = self.futures.pop(0)

    def rollout(self, actions) -> np.ndarray:
        return self.current.astype(np.uint8)


def test_rollout_psnr_pools_the_squared_error_so_an_exact_episode_adds_zero_not_100_db():
    context, frames = 2, 3
    still = StillEpisode(100, 100, context, frames)  # nothing moves: copy-last-frame is exact
    moving = StillEpisode(100, 120, context, frames)  # copy-last-frame off by 20 grey levels
    episodes = [still, moving]
    values = rollout_psnr(OffsetEngine(episodes, [0, 20], context), episodes, context, frames, None)
    half_of_400 = 10 * np.log10(255**2 / 200)  # 25.1 dB: the mean of errors 0 and 400
    assert values["copy_last_psnr"] == pytest.approx(half_of_400)  # a mean of dB would read 61.0
    assert values["rollout_psnr"] == pytest.approx(half_of_400)  # exact on one, off by 20 on the other
    assert values["rollout_psnr_last"] == pytest.approx(half_of_400)
