"""Training on the motion prior's starts: `training.encode_starts` makes the engine's starts of every
shard row, `training.finetune_starts` trains the engine's sampler from them."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import import_script, make_model_dir, write_smooth_episodes

from gameworld.actions import Action, ActionSpace
from gameworld.data import write_shard
from gameworld.data.shards import LatentShard, ShardSet, read_shard
from gameworld.engine import WorldEngine
from gameworld.metrics.motion import apply_motion
from gameworld.modeldir import SamplerDefaults, load_model_dir, read_config, write_config
from gameworld.models import FrameTokenizer
from gameworld.motion_prior import MotionPrior, feature_names
from training import encode_starts, finetune_starts
from training.config import load_config
from training.distributed import DistEnv
from training.finetune_starts import StartClips, StartsConfig, StartsJob, start_loss

ROOT = Path(__file__).resolve().parents[1]
NAMES = feature_names(ActionSpace.minecraft())
pytestmark = pytest.mark.usefixtures("torch_single_thread")


def prior(pan: float = -0.03) -> MotionPrior:
    """Forward zooms in by 2% a frame, a degree of yaw pans by `pan` of the width, pitch by 1% a degree."""
    weights = {"forward": (0.02, 0.0, 0.0), "dyaw": (0.0, pan, 0.0), "dpitch": (0.0, 0.0, 0.01)}
    return MotionPrior(NAMES, tuple(weights.get(name, (0.0, 0.0, 0.0)) for name in NAMES), pitch_limit=10)


def sample_with_prior(model_dir: Path) -> None:
    """The model samples in 2 steps, moving frames from its prior's starts at level 0.5."""
    config = read_config(model_dir)
    write_config(model_dir, replace(config, sampler=replace(config.sampler, steps=2, motion_prior=0.5)))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A tiny model directory with a prior it samples with, latent shards (2 episodes each) and their
    starts."""
    root = tmp_path_factory.mktemp("starts")
    model = make_model_dir(root / "model", max_frames=4)
    prior().save(model)
    sample_with_prior(model)
    write_smooth_episodes(root / "episodes", 4, seed=0)
    encode_latents = import_script(ROOT / "datasets" / "encode_latents.py")
    assert encode_latents.main(["--episodes", str(root / "episodes"), "--tokenizer", str(model / "tokenizer"),
                                "--out", str(root / "latents"), "--episodes-per-shard", "2"]) == 0
    assert encode_starts.main(["--model", str(model), "--shards", str(root / "latents"),
                               "--out", str(root / "starts")]) == 0
    return root


def expected_starts(data: Path, shard: int) -> torch.Tensor:
    """The starts of a shard's rows, made here one row at a time as the engine makes them."""
    latents = read_shard(data / "latents" / f"shard_{shard:06d}.safetensors")
    tokenizer = FrameTokenizer.from_pretrained(data / "model" / "tokenizer").eval()
    space = ActionSpace.minecraft()
    motion_prior, expected, pitch = prior(), [], 0.0
    for row in range(len(latents)):
        if latents.frame_index[row] == 0:
            expected.append(latents.latents[row].float())
            pitch = 0.0
            continue
        (action,) = space.decode(latents.actions[row : row + 1], exact_camera=True)
        before = tokenizer.decode(latents.latents[row - 1][None, None].float())[0, 0].numpy()
        moved = apply_motion(before, motion_prior.held(action, 1, pitch)[0])
        pitch = motion_prior.pitch_after(pitch, [action])
        expected.append(tokenizer.encode(moved[None, None])[0, 0])
    return torch.stack(expected)


def test_each_start_is_the_frame_before_decoded_moved_by_the_prior_and_encoded(data):
    for shard in (0, 1):
        starts = read_shard(data / "starts" / f"shard_{shard:06d}.safetensors")
        latents = read_shard(data / "latents" / f"shard_{shard:06d}.safetensors")
        assert torch.equal(starts.actions, latents.actions)
        assert torch.equal(starts.frame_index, latents.frame_index)
        expected = expected_starts(data, shard).half().float()
        assert torch.allclose(starts.latents.float(), expected, atol=2e-2), shard
        first = latents.frame_index == 0
        assert first.sum() == 2 and torch.equal(starts.latents[first], latents.latents[first])
        moved = ~first
        assert (starts.latents[moved].float() - latents.latents[moved].float()).abs().mean() > 0.01


def read_shard_like(space: ActionSpace, actions: list[Action]) -> LatentShard:
    """A shard of one episode with these actions (its latents zero: only the actions are read)."""
    count = len(actions)
    return LatentShard(torch.zeros(count, 8, 4, 8), space.encode(actions),
                       torch.zeros(count, dtype=torch.long), torch.arange(count), {})


def test_the_pitch_is_followed_from_level_and_stops_at_the_limit():
    """A look held up pans by 1% of the height a degree until the pitch, level at the episode's first
    frame, reaches its 10-degree limit; then not at all."""
    space = ActionSpace.minecraft()
    maker = encode_starts.StartMaker(FrameTokenizer.from_config("dc-f8c8").eval(), prior(), space)
    shard = read_shard_like(space, [Action.of(camera=(4.0, 0.0))] * 6)
    looks = space.decode(shard.actions, exact_camera=True)
    motions = [maker._advance(shard, row, action) for row, action in enumerate(looks)]
    assert motions[0] is None
    pans = np.array([m[2] for m in motions[1:]])
    expected = np.array([4, 4, 2, 0, 0]) / 100
    np.testing.assert_allclose(pans, expected, atol=1e-6)


def test_a_second_run_skips_the_shards_made_with_the_same_prior_and_remakes_others(data, tmp_path):
    out = tmp_path / "starts"
    first = encode_starts.encode_starts(str(data / "model"), data / "latents", out)
    assert len(first) == 2
    assert encode_starts.encode_starts(str(data / "model"), data / "latents", out) == []
    other = make_model_dir(tmp_path / "other", max_frames=4)
    prior(pan=-0.01).save(other)
    remade = encode_starts.encode_starts(str(other), data / "latents", out)
    assert len(remade) == 2
    assert json.loads(prior(pan=-0.01).to_json()) == ShardSet(out).meta[encode_starts.STARTS_META]


def test_an_episode_that_runs_on_into_the_next_shard_goes_on_from_its_last_row_there_too(data, tmp_path):
    """Shard 0's second episode split over two shards: the rows after the split start from the row
    before it, also when a second run skips the first shard."""
    whole = read_shard(data / "latents" / "shard_000000.safetensors")
    split = len(whole) - 5
    for number, rows in enumerate((slice(0, split), slice(split, None))):
        write_shard(tmp_path / "latents" / f"shard_{number:06d}.safetensors", whole.latents[rows],
                    whole.actions[rows], whole.episode_index[rows], whole.frame_index[rows], whole.meta)
    expected = read_shard(data / "starts" / "shard_000000.safetensors").latents
    model, shards, out = str(data / "model"), tmp_path / "latents", tmp_path / "starts"
    assert len(encode_starts.encode_starts(model, shards, out)) == 2
    second = out / "shard_000001.safetensors"
    assert torch.equal(read_shard(second).latents, expected[split:])
    second.unlink()
    assert len(encode_starts.encode_starts(model, shards, out)) == 1
    assert torch.equal(read_shard(second).latents, expected[split:])


def test_encode_starts_names_what_is_missing(data, tmp_path, capsys):
    bare = make_model_dir(tmp_path / "bare", max_frames=4)
    argv = ["--model", str(bare), "--shards", str(data / "latents"), "--out", str(tmp_path / "s")]
    assert encode_starts.main(argv) == 2
    assert "no motion prior" in capsys.readouterr().err
    argv = ["--model", str(data / "model"), "--shards", str(tmp_path / "none"), "--out", str(tmp_path / "s")]
    assert encode_starts.main(argv) == 2
    assert "none: no *.safetensors latent shards" in capsys.readouterr().err


def test_start_clips_pair_each_clip_with_the_starts_of_its_rows(data):
    clips = StartClips(str(data / "latents"), str(data / "starts"), 4, stride=2, seed=3)
    starts = ShardSet(data / "starts")
    for index in (0, 5, len(clips) - 1):
        latents, actions, clip_starts = clips[index]
        begin, stop = clips.clips.row_span(index)
        assert torch.equal(clip_starts, starts.rows(begin, stop)[0])
        assert torch.equal(latents, ShardSet(data / "latents").rows(begin, stop)[0])
        assert torch.equal(actions, starts.rows(begin, stop)[1])


def test_start_clips_refuse_starts_of_other_shards(data, tmp_path):
    write_smooth_episodes(tmp_path / "episodes", 2, seed=9, frames=20)
    encode_latents = import_script(ROOT / "datasets" / "encode_latents.py")
    assert encode_latents.main(["--episodes", str(tmp_path / "episodes"), "--tokenizer",
                                str(data / "model" / "tokenizer"), "--out", str(tmp_path / "latents")]) == 0
    with pytest.raises(ValueError, match="its rows are not those of"):
        StartClips(str(tmp_path / "latents"), str(data / "starts"), 4)


class Recorder(torch.nn.Module):
    """A stand-in world model: velocity `gain * (x - target) / t` (gain 1: every clean estimate is
    `target` exactly), recording what it was asked."""

    def __init__(self, target: torch.Tensor, gain: float = 1.0) -> None:
        super().__init__()
        self.target, self.gain, self.calls = target, torch.nn.Parameter(torch.tensor(gain)), []

    def forward(self, x, levels, actions, context=None, context_levels=None):
        self.calls.append((x.detach().clone(), levels.clone(), context_levels.clone()))
        return self.gain * (x - self.target) / levels[..., None, None, None]


def test_start_loss_samples_as_the_engine_does_from_the_start_noised_to_the_level():
    torch.manual_seed(0)
    latents, starts = torch.randn(2, 4, 8, 4, 8), torch.randn(2, 4, 8, 4, 8)
    actions = torch.zeros(2, 4, ActionSpace.minecraft().dim)
    sampler = SamplerDefaults(steps=2, temperature=0.9)
    model = Recorder(latents)
    generator = torch.Generator().manual_seed(5)
    loss = start_loss(model, latents, actions, starts, 0.4, sampler, StartsConfig(noise_start=0.0), generator)
    assert loss.item() < 1e-10  # every estimate is the truth
    (x1, t1, context_t), (x2, t2, _) = model.calls
    assert torch.allclose(t1, torch.full((2, 4), 0.4)) and torch.allclose(t2, torch.full((2, 4), 0.2))
    assert (context_t >= 0).all() and (context_t <= 0.1).all()
    # x1 = 0.6 start + 0.4 * 0.9 noise: what is left after taking the start away is noise of std 0.36
    residual = (x1 - 0.6 * starts) / 0.36
    assert 0.9 < float(residual.std()) < 1.1 and abs(float(residual.mean())) < 0.1
    # the Euler step from 0.4 to 0.2 along the model's velocity
    v = (x1 - latents) / 0.4
    assert torch.allclose(x2, x1 - 0.2 * v, atol=1e-6)


def test_start_loss_frames_from_pure_noise_run_the_full_schedule_and_the_first_frame_is_not_trained():
    torch.manual_seed(1)
    latents, starts = torch.randn(1, 3, 8, 4, 8), torch.randn(1, 3, 8, 4, 8)
    actions = torch.zeros(1, 3, ActionSpace.minecraft().dim)
    sampler = SamplerDefaults(steps=2)
    model = Recorder(latents)
    start_loss(model, latents, actions, starts, 0.4, sampler, StartsConfig(noise_start=1.0))
    (x1, t1, _), (_, t2, _) = model.calls
    assert torch.allclose(t1, torch.ones(1, 3)) and torch.allclose(t2, torch.full((1, 3), 0.5))
    assert 0.9 < float(x1.std()) < 1.1  # pure noise: the start is not used
    wrong_first = latents.clone()
    wrong_first[:, 0] += 5.0
    model = Recorder(wrong_first)
    assert start_loss(model, latents, actions, starts, 0.4, sampler, StartsConfig(0.0)).item() < 1e-10


def test_start_loss_backpropagates_through_the_steps():
    """With half of the right velocity, the first estimate is half-way and the second step starts
    from the first's result: the loss's gradient on the gain carries both steps."""
    torch.manual_seed(2)
    latents, starts = torch.randn(1, 3, 8, 4, 8), torch.randn(1, 3, 8, 4, 8)
    actions = torch.zeros(1, 3, ActionSpace.minecraft().dim)
    sampler = SamplerDefaults(steps=2)
    model = Recorder(latents, gain=0.5)
    loss = start_loss(model, latents, actions, starts, 0.4, sampler, StartsConfig(0.0),
                      torch.Generator().manual_seed(0))
    loss.backward()
    assert model.gain.grad < 0  # more of the velocity lowers the loss
    # by hand: e0 = x1 - target; step 1 estimate error (1 - g) e0; x2 - target = (1 - g / 2) e0;
    # step 2 estimate error (1 - g)(1 - g / 2) e0; loss = mean of the two squared errors
    (x1, _, _), _ = model.calls
    e0 = (x1 - latents)[:, 1:].pow(2).mean()
    g = 0.5
    expected = ((1 - g) ** 2 + ((1 - g) * (1 - g / 2)) ** 2) / 2 * e0
    assert torch.isclose(loss, expected, rtol=1e-5)


def job(data: Path, out: Path, *extra: str) -> StartsJob:
    overrides = [
        f"model={data / 'model'}", f"data.shards={data / 'latents'}", f"data.starts={data / 'starts'}",
        "data.clip_len=4", "data.stride=2", f"train.out_dir={out}", "train.batch_size=2", "train.log_every=1",
        "train.checkpoint_every=2", "validation.rollouts=1", "validation.context=2", "validation.frames=3",
        "validation.clip_len=4", "validation.clips=2", *extra,
    ]
    return load_config(StartsJob, ROOT / "training" / "configs" / "starts_default.yaml", overrides)


@torch.no_grad()
def held_out_loss(data: Path, model_dir: Path) -> float:
    """The start loss of a model directory on 8 clips, the same draws every call."""
    config, _, model = load_model_dir(model_dir)
    clips = StartClips(str(data / "latents"), str(data / "starts"), 4, stride=2, shuffle=False)
    latents, actions, starts = (torch.stack(parts).float() for parts in zip(*(clips[i] for i in range(8)),
                                                                            strict=True))
    generator = torch.Generator().manual_seed(0)
    return float(start_loss(model.float(), latents, actions, starts, config.sampler.motion_prior,
                            config.sampler, StartsConfig(), generator))


def test_fine_tuning_lowers_the_start_loss_and_writes_a_model_the_engine_plays_with_its_prior(data, tmp_path):
    out = tmp_path / "run"
    cfg = job(data, out, "train.max_steps=80", "train.optim.lr=2e-3", "train.optim.warmup_steps=1",
              "train.ema_decay=0", f"validation.shards={data / 'latents'}",
              f"validation.starts={data / 'starts'}", f"validation.episodes={data / 'episodes'}")
    model_dir = finetune_starts.run(cfg, DistEnv())
    before, after = held_out_loss(data, data / "model"), held_out_loss(data, model_dir)
    print(f"start loss on fixed draws: {before:.4f} -> {after:.4f}")
    assert after < 0.85 * before
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    (val,) = [m for m in lines if "val/start_loss" in m]
    assert val["val/start_loss"] > 0 and val["val/rollout_psnr"] > 0
    assert (model_dir / "motion_prior.json").read_text() == (data / "model" / "motion_prior.json").read_text()
    assert read_config(model_dir) == read_config(data / "model")
    _, _, before = load_model_dir(data / "model")
    _, _, after = load_model_dir(model_dir)
    changed = [k for k, v in after.state_dict().items() if not torch.equal(v, before.state_dict()[k])]
    assert changed
    engine = WorldEngine.from_pretrained(model_dir, device="cpu")
    assert engine.settings.motion_prior == 0.5
    engine.reset(frames=np.zeros((2, 32, 64, 3), np.uint8))
    assert engine.step(Action.of(camera=(0, 4))).shape == (32, 64, 3)


def test_fine_tuning_refuses_starts_of_another_prior_and_a_model_without_one(data, tmp_path):
    other = make_model_dir(tmp_path / "other", max_frames=4)
    prior(pan=-0.01).save(other)
    sample_with_prior(other)
    with pytest.raises(ValueError, match="moved by another motion prior"):
        finetune_starts.run(job(data, tmp_path / "a", f"model={other}"), DistEnv())
    bare = make_model_dir(tmp_path / "bare", max_frames=4)
    with pytest.raises(ValueError, match="needs a motion prior"):
        finetune_starts.run(job(data, tmp_path / "b", f"model={bare}"), DistEnv())


def test_the_command_names_a_bad_model_or_missing_starts_without_a_traceback(data, tmp_path, capsys):
    config = str(ROOT / "training" / "configs" / "starts_default.yaml")
    argv = ["--config", config, f"model={tmp_path / 'none'}", f"train.out_dir={tmp_path / 'run'}"]
    assert finetune_starts.main(argv) == 2
    assert "none: not a model directory" in capsys.readouterr().err
    argv = ["--config", config, f"model={data / 'model'}", f"data.shards={data / 'latents'}",
            f"data.starts={tmp_path / 'nothing'}", f"train.out_dir={tmp_path / 'run'}"]
    assert finetune_starts.main(argv) == 2
    assert "nothing: no *.safetensors latent shards" in capsys.readouterr().err
