"""The shared training loop on a toy problem: schedule, data position, EMA, accumulation, exact resume."""

import json
import math
import os
import signal
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import Dataset

from training.data import BatchStream
from training.distributed import DistEnv
from training.trainer import EMA, OptimConfig, Trainer, TrainerConfig, learning_rate, native_bf16

pytestmark = pytest.mark.usefixtures("torch_single_thread")


class Points(Dataset):
    """y = x @ w_true + noise, shuffled per epoch from a seed (like ClipDataset)."""

    def __init__(self, n: int = 48, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.01 * torch.randn(n, generator=g)
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.order = np.random.default_rng([self.seed, epoch]).permutation(len(self.x))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int):
        i = int(self.order[index])
        return self.x[i], self.y[i]

    def locate(self, index: int) -> tuple[int, int]:
        return 0, int(self.order[index])


def regression_loss(model, batch, generator):
    x, y = batch
    noisy = x + 0.01 * torch.randn(x.shape, generator=generator)  # uses the trainer's generator
    loss = (model(noisy).squeeze(-1) - y).pow(2).mean()
    return loss, {"abs_err": (model(x).squeeze(-1) - y).abs().mean()}


def make_trainer(tmp_path, **overrides) -> Trainer:
    optim = OptimConfig(lr=0.3, warmup_steps=2, weight_decay=0.0, grad_clip=0.0)
    cfg = TrainerConfig(**{**dict(out_dir=str(tmp_path), max_steps=12, batch_size=4, log_every=1,
                                  checkpoint_every=4, ema_decay=0.9, optim=optim), **overrides})
    torch.manual_seed(0)
    return Trainer(cfg, nn.Linear(4, 1), Points(), regression_loss, DistEnv())


def losses(out_dir) -> dict[int, float]:
    lines = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return {line["step"]: line["train/loss"] for line in lines if "train/loss" in line}


def test_learning_rate_warms_up_then_decays_by_cosine_to_the_floor():
    cfg = OptimConfig(lr=1.0, warmup_steps=4, min_lr_ratio=0.1)
    rates = [learning_rate(s, 21, cfg) for s in range(21)]  # steps 0..20; the cosine spans 4..20
    assert rates[:4] == [0.25, 0.5, 0.75, 1.0]
    assert rates[4] == pytest.approx(1.0) and rates[-1] == pytest.approx(0.1)
    assert rates[12] == pytest.approx(0.55)  # half way: floor + half the range
    assert rates[8] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert all(a >= b for a, b in zip(rates[3:], rates[4:], strict=False))


def test_batch_stream_walks_epochs_in_the_dataset_order_and_resumes_mid_epoch():
    data = Points(n=10)
    stream = BatchStream(data, batch_size=3)
    seen = [stream.last_indices[:] for _ in range(4) if next(stream) is not None]
    assert seen == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 1, 2]]  # the 10th item is dropped per epoch
    assert stream.state_dict() == {"epoch": 1, "batch": 1}
    following = next(stream)
    resumed = BatchStream(Points(n=10), batch_size=3)
    resumed.load_state_dict({"epoch": 1, "batch": 1})
    again = next(resumed)
    assert torch.equal(following[0], again[0]) and resumed.state_dict() == stream.state_dict()
    with pytest.raises(ValueError, match="fewer than one batch"):
        BatchStream(Points(n=2), batch_size=3)


def test_ema_follows_the_weights_with_a_warmed_up_decay():
    module = nn.Linear(2, 1)
    ema = EMA(module, decay=0.99)
    start = ema.shadow["weight"].clone()
    with torch.no_grad():
        module.weight.add_(1.0)
    ema.update(module)  # first update: decay min(0.99, 1/10) = 0.1
    assert torch.allclose(ema.shadow["weight"], start + 0.9)


def test_training_fits_the_toy_problem_and_logs(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=40, checkpoint_every=20)
    assert trainer.fit()
    history = losses(tmp_path)
    assert sorted(history) == list(range(1, 41))
    assert np.mean([history[s] for s in range(36, 41)]) < 0.1 * np.mean([history[s] for s in range(1, 6)])
    assert (tmp_path / "tb").is_dir() and [c.step for c in trainer.checkpoints.checkpoints()] == [20, 40]
    ema = trainer.ema_state_dict()
    assert not torch.equal(ema["weight"], trainer.module.weight.detach())  # EMA, not the live weights


class TwoLayers(nn.Module):
    """A linear model in two parts whose second part learns at ten times the rate."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(4, 4), nn.Linear(4, 1)
        self.lr_scales = {"second.": 10.0}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))


def test_a_modules_lr_scales_multiply_the_learning_rate_of_its_parameters(tmp_path):
    optim = OptimConfig(lr=0.01, warmup_steps=1, weight_decay=0.1, grad_clip=0.0)
    cfg = TrainerConfig(out_dir=str(tmp_path), max_steps=1, batch_size=4, ema_decay=0.0, optim=optim)
    torch.manual_seed(0)
    module = TwoLayers()
    before = {name: p.detach().clone() for name, p in module.named_parameters()}
    trainer = Trainer(cfg, module, Points(), regression_loss, DistEnv())
    groups = [(g["lr_scale"], g["weight_decay"], len(g["params"])) for g in trainer.optimizer.param_groups]
    assert groups == [(1.0, 0.1, 1), (1.0, 0.0, 1), (10.0, 0.1, 1), (10.0, 0.0, 1)]
    assert trainer.fit()
    # AdamW's first step: decay w by rate * wd (matrices), then move it by the rate (Adam's first
    # update is the gradient's sign)
    for name, p in module.named_parameters():
        rate = 0.01 * (10.0 if name.startswith("second.") else 1.0)
        decayed = before[name] * (1 - rate * (0.1 if p.ndim >= 2 else 0.0))
        step = (p.detach() - decayed).abs()
        assert torch.allclose(step, torch.full_like(step, rate), atol=1e-5), name


def test_a_resumed_run_takes_the_lr_scales_it_is_given_now(tmp_path):
    cfg = TrainerConfig(out_dir=str(tmp_path), max_steps=1, batch_size=4, ema_decay=0.0)
    assert Trainer(cfg, TwoLayers(), Points(), regression_loss, DistEnv()).fit()
    module = TwoLayers()
    module.lr_scales = {"second.": 3.0}
    resumed = Trainer(replace(cfg, max_steps=2, resume=True), module, Points(), regression_loss, DistEnv())
    assert resumed.resume() and resumed.step == 1
    assert [g["lr_scale"] for g in resumed.optimizer.param_groups] == [1.0, 1.0, 3.0, 3.0]


def test_a_crashed_run_resumes_to_the_same_losses_and_weights(tmp_path):
    reference = make_trainer(tmp_path / "ref")
    reference.fit()
    calls = 0

    def crash_on_step_7(model, batch, generator):
        nonlocal calls
        calls += 1
        if calls == 7:
            raise RuntimeError("simulated crash")
        return regression_loss(model, batch, generator)

    crashed = make_trainer(tmp_path / "run")
    crashed.loss_fn = crash_on_step_7
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashed.fit()
    assert max(losses(tmp_path / "run")) == 6
    with (tmp_path / "run" / "metrics.jsonl").open("a") as log:
        log.write('{"step": 7, "train/lo')  # a line cut short by the kill
    resumed = make_trainer(tmp_path / "run")
    assert resumed.fit()
    assert losses(tmp_path / "run") == losses(tmp_path / "ref")  # steps 5-6 redone, identically
    for name, value in reference.module.state_dict().items():
        assert torch.equal(value, resumed.module.state_dict()[name])
    assert all(torch.equal(reference.ema.shadow[k], resumed.ema.shadow[k]) for k in reference.ema.shadow)


def test_sigterm_stops_after_the_step_with_a_checkpoint_and_resume_continues(tmp_path):
    reference = make_trainer(tmp_path / "ref", log_data=True)
    reference.fit()
    calls = 0

    def term_on_step_6(model, batch, generator):
        nonlocal calls
        calls += 1
        if calls == 6:
            os.kill(os.getpid(), signal.SIGTERM)
        return regression_loss(model, batch, generator)

    stopped = make_trainer(tmp_path / "run", log_data=True)
    stopped.loss_fn = term_on_step_6
    handler = signal.getsignal(signal.SIGTERM)
    assert stopped.fit() is False
    assert stopped.step == 6 and stopped.checkpoints.latest().step == 6
    assert signal.getsignal(signal.SIGTERM) == handler  # the job's own handler is gone again
    resumed = make_trainer(tmp_path / "run", log_data=True)
    assert resumed.fit()
    assert losses(tmp_path / "run") == losses(tmp_path / "ref")
    data_log = "data_rank0.jsonl"
    assert (tmp_path / "run" / data_log).read_text() == (tmp_path / "ref" / data_log).read_text()


def test_gradient_accumulation_matches_one_big_batch(tmp_path):
    big = make_trainer(tmp_path / "big", batch_size=4, max_steps=3, ema_decay=0.0)
    small = make_trainer(tmp_path / "small", batch_size=2, grad_accum=2, max_steps=3, ema_decay=0.0)
    def plain_loss(model, batch, generator):
        return (model(batch[0]).squeeze(-1) - batch[1]).pow(2).mean()

    big.loss_fn = small.loss_fn = plain_loss
    big.fit()
    small.fit()
    assert torch.allclose(big.module.weight, small.module.weight, atol=1e-6)
    assert torch.equal(big.ema_state_dict()["weight"], big.module.weight.detach())  # no EMA: live weights


def test_starting_over_in_a_folder_with_checkpoints_is_refused(tmp_path):
    make_trainer(tmp_path, max_steps=4).fit()
    with pytest.raises(ValueError, match="earlier run"):
        make_trainer(tmp_path, max_steps=4, resume=False).fit()


def test_bf16_is_refused_on_a_cpu_without_native_bf16(tmp_path, monkeypatch):
    monkeypatch.setattr("training.trainer.native_bf16", lambda device: False)
    with pytest.raises(ValueError, match="precision=bf16 needs native bf16.*use fp32"):
        make_trainer(tmp_path, precision="bf16")


@pytest.mark.parametrize("precision", ["auto", "fp32", "bf16"])
def test_a_cpu_runs_bf16_autocast_only_when_asked(tmp_path, precision):
    if precision == "bf16" and not native_bf16(torch.device("cpu")):
        pytest.skip("this CPU has no native bf16")
    seen = []

    def loss_fn(model, batch, generator):
        seen.append((torch.is_autocast_enabled("cpu"), model(batch[0]).dtype))
        return regression_loss(model, batch, generator)

    optim = OptimConfig(lr=0.3, warmup_steps=2, weight_decay=0.0, grad_clip=0.0)
    cfg = TrainerConfig(out_dir=str(tmp_path), max_steps=3, batch_size=4, log_every=1,
                        precision=precision, optim=optim)
    trainer = Trainer(cfg, nn.Linear(4, 1), Points(), loss_fn, DistEnv())
    assert trainer.fit()
    expected = (True, torch.bfloat16) if precision == "bf16" else (False, torch.float32)
    assert seen == [expected] * 3
    assert trainer.module.weight.dtype == torch.float32  # autocast leaves the weights in fp32
    assert math.isfinite(losses(tmp_path)[3])


def test_a_time_budget_finishes_the_run_early_with_a_checkpoint_and_validation(tmp_path, monkeypatch):
    clock = iter(range(0, 10_000, 10))  # every look at the clock is 10 s later
    monkeypatch.setattr("training.trainer.time.monotonic", lambda: float(next(clock)))
    validated = []
    trainer = make_trainer(tmp_path, max_steps=100, max_minutes=0.5, validate_every=0)
    assert trainer.fit(validate=lambda t: validated.append(t.step) or {})
    # deadline at 30 s: steps 1-3 see 10, 20, 30 s; step 4 sees 40 s and ends the run
    assert trainer.step == 4 and validated == [4]
    assert trainer.checkpoints.checkpoints()[-1].step == 4
    resumed = make_trainer(tmp_path, max_steps=6)
    assert resumed.fit() and resumed.step == 6  # a later run resumes towards max_steps


def test_a_time_budget_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="max_minutes"):
        make_trainer(tmp_path, max_minutes=0)
