"""The one training loop every job shares (world model, tokenizer, distillation, IDM).

A job hands the `Trainer` a module, a dataset and a loss function; the trainer does the rest:

    trainer = Trainer(cfg.train, module, dataset, loss_fn, env, config=to_dict(cfg))
    trainer.fit(validate=my_validation)     # resumes from <out_dir>/checkpoints if there is one
    weights = trainer.ema_state_dict()      # EMA weights (or the live ones), full, on every rank

- `loss_fn(model, batch, generator) -> loss` or `(loss, {"name": float, ...})`. `model` is the
  wrapped module (DDP / FSDP / compiled); `generator` is this rank's seeded torch.Generator,
  saved in checkpoints, so a resumed run draws the same noise as an uninterrupted one.
- AdamW (weight decay on matrices only), linear warmup then cosine decay to
  `lr * min_lr_ratio` (times the module's `lr_scales` for some parameters, see `parameter_groups`),
  gradient clipping, gradient accumulation, EMA of the weights, bf16 autocast
  (`auto` on CUDA; on a CPU with native bf16, AVX512-BF16 or AMX, by `precision: bf16`), gradient
  checkpointing and `torch.compile` switches.
- Logs on rank 0: a tqdm bar (loss, step time, ETA), TensorBoard scalars in `<out_dir>/tb`, and
  `<out_dir>/metrics.jsonl` (one JSON line per logged step or validation).
- SIGTERM / Ctrl-C: the current step finishes, a checkpoint is written, `fit` returns False.
"""

from __future__ import annotations

import json
import math
import signal
import time
import warnings
from collections.abc import Callable
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from tqdm import tqdm

from gameworld.atomic import write_text_atomic
from training import distributed
from training.checkpoint import CheckpointManager, capture_rng, flatten, restore_rng, unflatten
from training.data import BatchStream
from training.distributed import DistEnv

PRECISIONS = ("auto", "fp32", "bf16")
# Dense bf16 peak of common GPUs, for MFU when `peak_tflops` is not given.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "4090": 165.0}


@dataclass
class OptimConfig:
    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.01  # on weight matrices only
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # cosine decay ends at lr * min_lr_ratio on the last step
    grad_clip: float = 1.0  # max global gradient norm; 0 turns clipping off

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.warmup_steps < 0 or not 0 <= self.min_lr_ratio <= 1 or self.grad_clip < 0:
            raise ValueError(f"OptimConfig needs lr > 0, warmup_steps >= 0, 0 <= min_lr_ratio <= 1 "
                             f"and grad_clip >= 0: {self}")


@dataclass
class TrainerConfig:
    out_dir: str = "runs/train"
    max_steps: int = 1000
    max_minutes: float | None = None  # wall-clock budget of one run: past it, finish as if at max_steps
    batch_size: int = 8  # per process and micro-step
    grad_accum: int = 1  # micro-steps per optimizer step
    seed: int = 0
    device: str = "auto"  # auto: cuda > mps > cpu
    precision: str = "auto"  # auto: bf16 autocast on CUDA, else fp32; bf16: also on a CPU with native bf16
    strategy: str = "auto"  # auto: DDP under torchrun, else none | ddp | fsdp
    compile: bool = False
    grad_checkpointing: bool = False
    ema_decay: float = 0.999  # 0: no EMA (exports use the live weights)
    log_every: int = 10
    validate_every: int = 0  # 0: only after the last step
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    resume: bool = True  # continue from the newest good checkpoint in <out_dir>/checkpoints
    num_workers: int = 0
    log_data: bool = False  # write which items each step used to <out_dir>/data_rank<r>.jsonl
    peak_tflops: float | None = None  # per device, for MFU; known GPUs are looked up
    optim: OptimConfig = field(default_factory=OptimConfig)

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.batch_size < 1 or self.grad_accum < 1 or self.log_every < 1:
            raise ValueError("max_steps, batch_size, grad_accum and log_every must be at least 1")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError(f"max_minutes must be positive (or null for no budget), got {self.max_minutes}")
        if self.checkpoint_every < 1 or self.keep_checkpoints < 1 or self.validate_every < 0:
            raise ValueError("checkpoint_every and keep_checkpoints must be >= 1, validate_every >= 0")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        distributed.resolve_strategy(self.strategy, DistEnv())


def native_bf16(device: torch.device) -> bool:
    """Whether `device` runs bf16 matmuls natively: a CUDA GPU, or a CPU whose oneDNN has bf16 kernels
    (AVX512-BF16 or AMX). Elsewhere bf16 is emulated and slower than fp32."""
    if device.type == "cuda":
        return True
    if device.type == "cpu" and torch.backends.mkldnn.is_available():
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def learning_rate(step: int, max_steps: int, cfg: OptimConfig) -> float:
    """Learning rate of optimizer step `step` (0-based): linear warmup, then cosine decay."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, max_steps - 1 - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def parameter_groups(module: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices (and conv kernels); none on biases, norms and embeddings of size 1.

    A module may set `lr_scales`, parameter-name prefix -> multiplier of the learning rate (a critic
    that learns from scratch beside a pretrained student, say): those parameters get groups of their
    own, after the two of the rest, and each group's `lr_scale` multiplies the schedule's rate.
    """
    scales: dict[str, float] = getattr(module, "lr_scales", {})
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {(1.0, True): [], (1.0, False): []}
    for name, param in module.named_parameters():
        if param.requires_grad:
            scale = next((s for prefix, s in scales.items() if name.startswith(prefix)), 1.0)
            groups.setdefault((scale, param.ndim >= 2), []).append(param)
    return [
        {"params": params, "weight_decay": weight_decay if decay else 0.0, "lr_scale": scale}
        for (scale, decay), params in groups.items()
        if params or scale == 1.0
    ]


class EMA:
    """Exponential moving average of a module's parameters (fp32), kept beside the live ones.

    The decay warms up as min(decay, (1 + n) / (10 + n)) after n updates, so short runs and
    early checkpoints are not dominated by the random initialisation. Only trainable parameters are
    averaged: frozen ones (a distillation teacher) never change.
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay, self.updates = decay, 0
        self.shadow = {n: p.detach().float().clone() for n, p in module.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        names = list(self.shadow)
        params = dict(module.named_parameters())
        torch._foreach_lerp_([self.shadow[n] for n in names], [params[n].detach().float() for n in names],
                             1.0 - decay)
        self.updates += 1


def _full(tensor: torch.Tensor) -> torch.Tensor:
    """A whole tensor on the CPU (an FSDP shard is gathered: collective)."""
    if hasattr(tensor, "full_tensor"):
        tensor = tensor.full_tensor()
    return tensor.detach().cpu()


def _peak_flops(cfg: TrainerConfig, device: torch.device) -> float | None:
    if cfg.peak_tflops:
        return cfg.peak_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((tf * 1e12 for key, tf in PEAK_TFLOPS.items() if key in name), None)


def _keep_lines_until(path: Path, step: int) -> None:
    """Drop the JSON lines of a log written after `step` (and a line cut short by a kill)."""
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line + "\n")
        except (ValueError, KeyError, TypeError):
            continue
    write_text_atomic(path, "".join(kept))


class Trainer:
    """Owns the wrapped model, optimizer, EMA, data position, RNG and logs of one training run."""

    def __init__(
        self,
        cfg: TrainerConfig,
        module: nn.Module,
        dataset,
        loss_fn: Callable,
        env: DistEnv,
        *,
        config: dict | None = None,
        tokens_per_item: int = 0,
        flops_per_token: float = 0.0,
    ) -> None:
        self.cfg, self.env, self.loss_fn = cfg, env, loss_fn
        self.config = config or {}
        self.tokens_per_item, self.flops_per_token = tokens_per_item, flops_per_token
        self.out_dir = Path(cfg.out_dir)
        self.device = env.device
        if cfg.precision == "bf16" and not native_bf16(self.device):
            raise ValueError(
                f"precision=bf16 needs native bf16 (a CUDA GPU, or a CPU with AVX512-BF16 or AMX), which "
                f"{self.device} lacks; use fp32 (or auto)"
            )
        # `auto` keeps a CPU in fp32: bf16 is faster there but not bit-reproducible across CPUs
        self.autocast = cfg.precision == "bf16" or (cfg.precision == "auto" and self.device.type == "cuda")
        self.strategy = distributed.resolve_strategy(cfg.strategy, env)

        self.module = module.to(self.device).train()
        if cfg.grad_checkpointing:
            if not hasattr(module, "enable_gradient_checkpointing"):
                raise ValueError(f"{type(module).__name__} has no gradient checkpointing switch")
            module.enable_gradient_checkpointing()
        self.model = distributed.wrap_model(self.module, self.strategy, env)
        if cfg.compile:
            self.model = torch.compile(self.model)
        self.optimizer = torch.optim.AdamW(
            parameter_groups(self.module, cfg.optim.weight_decay), lr=cfg.optim.lr, betas=cfg.optim.betas,
            eps=cfg.optim.eps, fused=self.device.type == "cuda" and self.strategy != "fsdp",
        )
        self.ema = EMA(self.module, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.generator = torch.Generator(self.device).manual_seed(cfg.seed * 1000 + env.rank)
        self.data = BatchStream(dataset, cfg.batch_size, cfg.num_workers, name=type(dataset).__name__)
        self.dataset = dataset
        self.step = 0
        self.checkpoints = CheckpointManager(
            self.out_dir / "checkpoints", cfg.keep_checkpoints, env.rank, lambda: distributed.barrier(env)
        )
        self.writer = None
        self._stop_requested = False

    # ------------------------------------------------------------------------------ state

    def ema_state_dict(self) -> dict[str, torch.Tensor]:
        """Full CPU weights for export or validation: the EMA where kept, else the live ones.

        Collective under FSDP: call it on every rank.
        """
        state = {name: _full(t) for name, t in self.module.state_dict().items()}
        if self.ema is not None:
            state.update({name: _full(t).to(state[name].dtype) for name, t in self.ema.shadow.items()})
        return state

    def _state_options(self, cpu_offload: bool) -> StateDictOptions:
        return StateDictOptions(full_state_dict=True, cpu_offload=cpu_offload)

    def save_checkpoint(self) -> Path:
        """Write a checkpoint of this exact step (collective: every rank calls it)."""
        options = self._state_options(cpu_offload=True)
        tensors: dict[str, torch.Tensor] = {}
        model_state = get_model_state_dict(self.module, options=options)
        optim_state = get_optimizer_state_dict(self.module, self.optimizer, options=options)
        ema_state = {name: _full(t) for name, t in self.ema.shadow.items()} if self.ema else {}
        state = {}
        if self.env.is_main:
            tensors.update({f"model/{k}": v.contiguous() for k, v in model_state.items()})
            tensors.update({f"ema/{k}": v.contiguous() for k, v in ema_state.items()})
            state = {
                "optimizer": flatten(optim_state, "optim", tensors),
                "ema_updates": self.ema.updates if self.ema else 0,
                "data": self.data.state_dict(),
                "world_size": self.env.world_size,
                "batch_size": self.cfg.batch_size,
                "config": self.config,
            }
        rng = capture_rng({"trainer": self.generator})
        return self.checkpoints.save(self.step, tensors, state, rng)

    def resume(self) -> bool:
        """Load the newest good checkpoint, if any; True when one was loaded.

        With `resume` off, checkpoints already in the folder are an error: a new run would mix
        its own with them (and a later resume could pick the old run's).
        """
        if not self.cfg.resume:
            if self.checkpoints.checkpoints():
                raise ValueError(f"{self.checkpoints.directory} holds checkpoints of an earlier run; set "
                                 "train.resume=true to continue it, or choose another train.out_dir")
            return False
        found = self.checkpoints.latest() if self.env.is_main else None
        step = distributed.broadcast_int(found.step if found else -1, self.env)
        if step < 0:
            return False
        checkpoint = next(c for c in self.checkpoints.checkpoints() if c.step == step)
        tensors, state = checkpoint.tensors(), checkpoint.state()
        part = lambda prefix: {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}  # noqa: E731
        options = self._state_options(cpu_offload=False)
        set_model_state_dict(self.module, part("model/"), options=options)
        optimizer_state = unflatten(state["optimizer"], tensors)
        scales = [group.get("lr_scale", 1.0) for group in self.optimizer.param_groups]
        set_optimizer_state_dict(self.module, self.optimizer, optimizer_state, options=options)
        for group, scale in zip(self.optimizer.param_groups, scales, strict=True):
            group["lr_scale"] = scale  # this run's `lr_scales`, not the ones the checkpoint saved
        if self.ema is not None:
            self._load_ema(part("ema/"), state["ema_updates"], checkpoint.path)
        self.step = checkpoint.step
        self.data.load_state_dict(self._data_position(state))
        rng = checkpoint.rng(self.env.rank) if state["world_size"] == self.env.world_size else None
        if rng is None:
            warnings.warn(f"{checkpoint.path}: written by {state['world_size']} process(es), now "
                          f"{self.env.world_size}: random states are seeded afresh", RuntimeWarning,
                          stacklevel=2)
            torch.manual_seed(self.cfg.seed + self.step * 7919 + self.env.rank)
            self.generator.manual_seed(self.cfg.seed * 1000 + self.env.rank + self.step * 7919)
        else:
            restore_rng(rng, {"trainer": self.generator})
        return True

    def _load_ema(self, saved: dict[str, torch.Tensor], updates: int, path: Path) -> None:
        if not saved:  # a checkpoint written without EMA: start the average from the weights
            self.ema = EMA(self.module, self.cfg.ema_decay)
            return
        missing = sorted(set(self.ema.shadow) - set(saved))
        if missing:
            raise ValueError(f"{path}: EMA lacks {missing[:5]}")
        for name, shadow in self.ema.shadow.items():
            full = saved[name].to(self.device, torch.float32)
            if hasattr(shadow, "device_mesh"):
                from torch.distributed.tensor import distribute_tensor

                full = distribute_tensor(full, shadow.device_mesh, shadow.placements)
            shadow.copy_(full)
        self.ema.updates = updates

    def _data_position(self, state: dict) -> dict:
        """The data position to continue from; rescaled if the number of processes or batch changed."""
        data = state["data"]
        same = state["world_size"] == self.env.world_size and state["batch_size"] == self.cfg.batch_size
        if same:
            return data
        seen = data["batch"] * state["batch_size"] * state["world_size"]
        warnings.warn("resuming with a different number of processes or batch size: the data order "
                      "continues approximately, not exactly", RuntimeWarning, stacklevel=3)
        return {"epoch": data["epoch"], "batch": seen // (self.cfg.batch_size * self.env.world_size)}

    # ------------------------------------------------------------------------------ one step

    @contextmanager
    def _gradient_sync(self, enabled: bool):
        """No gradient all-reduce on accumulation micro-steps before the last one."""
        if enabled or self.strategy == "none":
            yield
        elif self.strategy == "ddp":
            with self.model.no_sync():
                yield
        else:
            self.module.set_requires_gradient_sync(False)
            try:
                yield
            finally:
                self.module.set_requires_gradient_sync(True)

    def _to_device(self, batch):
        if torch.is_tensor(batch):
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, (list, tuple)):
            return type(batch)(self._to_device(b) for b in batch)
        if isinstance(batch, dict):
            return {k: self._to_device(v) for k, v in batch.items()}
        return batch

    def train_step(self) -> dict[str, torch.Tensor]:
        """One optimizer step over `grad_accum` micro-batches; returns this rank's (unsynced) metrics."""
        cfg = self.cfg
        lr = learning_rate(self.step, cfg.max_steps, cfg.optim)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        totals: dict[str, torch.Tensor] = {}
        used = []
        for micro in range(cfg.grad_accum):
            batch = self._to_device(next(self.data))
            used.extend(self.data.last_indices)
            autocast = torch.autocast(self.device.type, torch.bfloat16) if self.autocast else nullcontext()
            with self._gradient_sync(micro == cfg.grad_accum - 1), autocast:
                out = self.loss_fn(self.model, batch, self.generator)
                loss, extra = out if isinstance(out, tuple) else (out, {})
                (loss / cfg.grad_accum).backward()
            for name, value in {"loss": loss, **extra}.items():
                value = torch.as_tensor(value, dtype=torch.float32).detach().to(self.device) / cfg.grad_accum
                totals[name] = totals.get(name, 0) + value
        max_norm = cfg.optim.grad_clip if cfg.optim.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.module.parameters(), max_norm)
        if hasattr(grad_norm, "full_tensor"):
            grad_norm = grad_norm.full_tensor()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.module)
        self.step += 1
        if cfg.log_data:
            self._log_data(used)
        return {**totals, "grad_norm": grad_norm.detach().float(), "lr": torch.tensor(lr)}

    def _log_data(self, indices: list[int]) -> None:
        locate = getattr(self.dataset, "locate", None)
        items = [list(locate(i)) if locate else i for i in indices]
        with (self.out_dir / f"data_rank{self.env.rank}.jsonl").open("a") as handle:
            handle.write(json.dumps({"step": self.step, "items": items}) + "\n")

    # ------------------------------------------------------------------------------ logs

    def log(self, values: dict[str, float]) -> None:
        """Record scalars of this step (rank 0): TensorBoard and metrics.jsonl."""
        if not self.env.is_main or not values:
            return
        for name, value in values.items():
            self.writer.add_scalar(name, value, self.step)
        with (self.out_dir / "metrics.jsonl").open("a") as handle:
            handle.write(json.dumps({"step": self.step, **values}) + "\n")

    def _open_logs(self) -> None:
        """TensorBoard writer and metrics.jsonl, with anything logged after the resumed step dropped."""
        if not self.env.is_main:
            return
        from torch.utils.tensorboard import SummaryWriter

        self.out_dir.mkdir(parents=True, exist_ok=True)
        for path in [self.out_dir / "metrics.jsonl", *self.out_dir.glob("data_rank*.jsonl")]:
            if path.exists():
                _keep_lines_until(path, self.step)
        self.writer = SummaryWriter(str(self.out_dir / "tb"), purge_step=self.step + 1)

    def _throughput(self, step_time: float) -> dict[str, float]:
        if not self.tokens_per_item:
            return {}
        items = self.cfg.batch_size * self.cfg.grad_accum * self.env.world_size
        tokens_per_s = self.tokens_per_item * items / step_time
        out = {"perf/tokens_per_s": tokens_per_s}
        peak = _peak_flops(self.cfg, self.device)
        if peak and self.flops_per_token:
            out["perf/mfu"] = self.flops_per_token * tokens_per_s / (peak * self.env.world_size)
        return out

    # ------------------------------------------------------------------------------ the loop

    @contextmanager
    def _stop_on_signals(self):
        """SIGTERM / SIGINT ask for a checkpoint and a clean stop after the current step."""
        def request(signum, frame):
            self._stop_requested = True
            signal.signal(signum, previous[signum])  # a second signal acts as usual

        previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for sig in previous:
                signal.signal(sig, request)
        except ValueError:  # not the main thread: no handlers, the job is stopped the hard way
            previous = {}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def fit(self, validate: Callable[[Trainer], dict[str, float]] | None = None) -> bool:
        """Train to `max_steps` (resuming first); True when finished, False when stopped by a signal.

        A run with `max_minutes` also finishes once that much wall-clock time has passed (the
        learning-rate schedule still follows `max_steps`). `validate(trainer)` runs on every rank
        every `validate_every` steps and after the last one; what it returns is logged under `val/`.
        """
        cfg = self.cfg
        deadline = None if cfg.max_minutes is None else time.monotonic() + 60 * cfg.max_minutes
        resumed = self.resume()
        self._open_logs()
        if resumed and self.env.is_main:
            tqdm.write(f"resumed from step {self.step} ({self.checkpoints.directory})")
        bar = tqdm(total=cfg.max_steps, initial=self.step, disable=not self.env.is_main, unit="step",
                   dynamic_ncols=True)
        pending: dict[str, torch.Tensor] = {}
        pending_steps, last_saved, last_validated = 0, self.step, -1
        timer, paused = time.perf_counter(), 0.0  # paused: checkpoint and validation time, not steps
        with self._stop_on_signals(), ExitStack() as stack:
            stack.callback(bar.close)
            stack.callback(self.data.close)
            while self.step < cfg.max_steps:
                metrics = self.train_step()
                for name, value in metrics.items():
                    pending[name] = pending.get(name, 0) + value
                pending_steps += 1
                if self.step % cfg.log_every == 0 or self.step == cfg.max_steps:
                    if self.device.type == "cuda":
                        torch.cuda.synchronize(self.device)
                    step_time = (time.perf_counter() - timer - paused) / pending_steps
                    values = {f"train/{k}": float(v) / pending_steps for k, v in pending.items()}
                    values = distributed.mean_over_ranks(values, self.env)
                    values.update({"train/step_time": step_time, **self._throughput(step_time)})
                    self.log(values)
                    bar.set_postfix(loss=f"{values['train/loss']:.4f}", step_s=f"{step_time:.2f}")
                    pending, pending_steps, timer, paused = {}, 0, time.perf_counter(), 0.0
                bar.update(1)
                stop = distributed.any_rank(self._stop_requested, self.env)
                out_of_time = deadline is not None and distributed.any_rank(time.monotonic() > deadline,
                                                                            self.env)
                started = time.perf_counter()
                if out_of_time:
                    if self.env.is_main:
                        tqdm.write(f"time budget of {cfg.max_minutes} min spent at step {self.step}")
                    break
                if stop or self.step % cfg.checkpoint_every == 0 or self.step == cfg.max_steps:
                    self.save_checkpoint()
                    last_saved = self.step
                if stop:
                    if self.env.is_main:
                        tqdm.write(f"stopped at step {self.step}; checkpoint written, run again to resume")
                    return False
                if validate and cfg.validate_every and self.step % cfg.validate_every == 0:
                    self._validate(validate)
                    last_validated = self.step
                paused += time.perf_counter() - started
        if last_saved != self.step:
            self.save_checkpoint()
        if validate and last_validated != self.step:
            self._validate(validate)
        if self.writer is not None:
            self.writer.close()
        return True

    def _validate(self, validate: Callable[[Trainer], dict[str, float]]) -> dict[str, float]:
        self.module.eval()
        try:
            values = validate(self)
        finally:
            self.module.train()
        values = {f"val/{k}": float(v) for k, v in values.items()}
        self.log(values)
        if self.env.is_main and values:
            tqdm.write(f"step {self.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))
        return values
