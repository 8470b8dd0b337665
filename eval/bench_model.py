"""NextFrameDiT size table: parameters and forward time per frame with a full KV cache.

    python -m eval.bench_model                            # CPU, every named size, 256x144 frames
    python -m eval.bench_model --sizes tiny,130m --threads 1
    python -m eval.bench_model --gpu                      # CUDA: FlexAttention vs SDPA training step

CPU rows time `forward_step` of one new frame against a cache holding a full window of committed
frames (the steady state of a rollout): `step` is one denoising forward, `commit` the forward that
writes the frame's keys/values; a frame costs `steps * step + commit`. The tokenizer row times the
default tokenizer decoding one frame. Medians; writes `eval/results/bench_model_cpu.json`.

The GPU mode times a bf16 training step (forward, backward, AdamW) of the 310m size on 384x224
clips with the block-causal mask as a FlexAttention BlockMask and as an SDPA mask: tokens/s, peak
memory and MFU; writes `eval/results/bench_model_gpu.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from tqdm import tqdm

from gameworld.models import DEFAULT_TOKENIZER, MODEL_SIZES, FrameTokenizer, NextFrameDiT

RESULTS = Path(__file__).resolve().parent / "results"
FRAME_FACTOR = 8  # the tokenizers' spatial factor
# Dense bf16 peak of the accelerators we report MFU on, in FLOP/s.
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "4090": 165e12}


def median_ms(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def latent_overrides(width: int, height: int) -> dict:
    return dict(latent_height=height // FRAME_FACTOR, latent_width=width // FRAME_FACTOR)


@torch.no_grad()
def bench_cpu_size(size: str, width: int, height: int, window: int, repeats: int, steps: int) -> dict:
    model = NextFrameDiT.from_size(size, max_frames=window, **latent_overrides(width, height)).eval()
    cfg = model.config
    shape = (1, 1, cfg.in_channels, cfg.latent_height, cfg.latent_width)
    latent, level, action = torch.randn(shape), torch.full((1, 1), 0.5), torch.zeros(1, 1, cfg.action_dim)
    cache = model.new_cache(1)
    context = window - 1
    model.forward_step(
        torch.randn(1, context, *shape[2:]),
        torch.full((1, context), 0.02),
        torch.zeros(1, context, cfg.action_dim),
        cache,
        write=True,
    )  # a full window: the steady state of a long rollout
    step_ms = median_ms(lambda: model.forward_step(latent, level, action, cache), repeats, warmup=2)
    commit_ms = median_ms(
        lambda: model.forward_step(latent, level, action, cache, write=True), repeats, warmup=2
    )
    return {
        "size": size,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "hidden": cfg.hidden_size,
        "depth": cfg.depth,
        "heads": cfg.num_heads,
        "frame": f"{width}x{height}",
        "latent": f"{cfg.in_channels}x{cfg.latent_height}x{cfg.latent_width}",
        "tokens_per_frame": model.tokens_per_frame,
        "window": window,
        "cache_mb": cache.memory_bytes() / 2**20,
        "step_ms": step_ms,
        "commit_ms": commit_ms,
        "frame_ms": steps * step_ms + commit_ms,
        "steps": steps,
        "repeats": repeats,
    }


@torch.no_grad()
def bench_tokenizer(width: int, height: int, repeats: int) -> dict:
    tokenizer = FrameTokenizer.from_config(DEFAULT_TOKENIZER).eval()
    channels, h, w = tokenizer.latent_shape(height, width)
    latents = torch.randn(1, 1, channels, h, w)
    return {
        "tokenizer": DEFAULT_TOKENIZER,
        "frame": f"{width}x{height}",
        "params_m": sum(p.numel() for p in tokenizer.parameters()) / 1e6,
        "decode_ms": median_ms(lambda: tokenizer.decode(latents), repeats, warmup=3),
    }


def training_flops_per_token(model: NextFrameDiT, frames: int) -> float:
    """6 N for the matmuls plus block-causal attention (scores and values, forward and backward)."""
    cfg = model.config
    matmul_params = sum(p.numel() for name, p in model.named_parameters() if p.ndim == 2)
    visible_keys = (frames + 1) / 2 * model.tokens_per_frame  # average over block-causal query frames
    return 6 * matmul_params + 12 * cfg.depth * cfg.hidden_size * visible_keys


def bench_gpu_backend(
    size: str, backend: str, width: int, height: int, frames: int, batch: int, repeats: int
) -> dict:
    """Median bf16 training step (forward, backward, AdamW) of one size with one attention backend."""
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = NextFrameDiT.from_size(
        size, max_frames=frames, attention_backend=backend, **latent_overrides(width, height)
    ).to(device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    cfg = model.config
    latents = torch.randn(batch, frames, cfg.in_channels, cfg.latent_height, cfg.latent_width, device=device)
    levels = torch.rand(batch, frames, device=device)
    actions = torch.zeros(batch, frames, cfg.action_dim, device=device)

    def train_step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = (model(latents, levels, actions).float() - latents).pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()

    torch.cuda.reset_peak_memory_stats(device)
    step_ms = median_ms(train_step, repeats, warmup=3)
    tokens = batch * frames * model.tokens_per_frame
    name = torch.cuda.get_device_name(device)
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    achieved = training_flops_per_token(model, frames) * tokens / (step_ms / 1000)
    return {
        "backend": backend,
        "size": size,
        "device": name,
        "frame": f"{width}x{height}",
        "frames": frames,
        "batch": batch,
        "tokens_per_step": tokens,
        "step_ms": step_ms,
        "tokens_per_s": tokens / (step_ms / 1000),
        "peak_memory_gb": torch.cuda.max_memory_allocated(device) / 2**30,
        "tflops": achieved / 1e12,
        "mfu": achieved / peak if peak else None,
    }


def print_cpu_table(rows: list[dict], tokenizer: dict) -> None:
    print(
        f"frame {rows[0]['frame']}, latent {rows[0]['latent']}, {rows[0]['tokens_per_frame']} tokens/frame, "
        f"window {rows[0]['window']} frames (cache full), {torch.get_num_threads()} CPU thread(s)"
    )
    print(
        f"{'size':<6}{'params':>9}{'D':>6}{'depth':>6}{'cache MB':>10}{'step ms':>10}{'commit ms':>11}"
        f"{'frame ms':>10}"
    )
    for r in rows:
        print(
            f"{r['size']:<6}{r['params_m']:>8.1f}M{r['hidden']:>6}{r['depth']:>6}{r['cache_mb']:>10.1f}"
            f"{r['step_ms']:>10.1f}{r['commit_ms']:>11.1f}{r['frame_ms']:>10.1f}"
        )
    print(f"(frame ms = {rows[0]['steps']} denoising steps + 1 commit)")
    print(
        f"tokenizer {tokenizer['tokenizer']} ({tokenizer['params_m']:.2f}M): decode one {tokenizer['frame']} "
        f"frame {tokenizer['decode_ms']:.1f} ms"
    )


def print_gpu_table(rows: list[dict]) -> None:
    print(
        f"{rows[0]['size']} at {rows[0]['frame']}, {rows[0]['frames']} frames x batch {rows[0]['batch']}, "
        f"bf16, {rows[0]['device']}"
    )
    print(f"{'backend':<8}{'step ms':>10}{'tokens/s':>12}{'peak GB':>9}{'TFLOP/s':>9}{'MFU':>7}")
    for r in rows:
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
        print(
            f"{r['backend']:<8}{r['step_ms']:>10.1f}{r['tokens_per_s']:>12.0f}{r['peak_memory_gb']:>9.1f}"
            f"{r['tflops']:>9.1f}{mfu:>7}"
        )


def write_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    payload["machine"] = {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "load_average_1m": os.getloadavg()[0],  # other work on the machine skews CPU timings
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def parse_frame(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"frame size must look like 256x144, got {text!r}") from None
    if width % (2 * FRAME_FACTOR) or height % (2 * FRAME_FACTOR):
        raise argparse.ArgumentTypeError(f"frame size {text} must be divisible by {2 * FRAME_FACTOR}")
    return width, height


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default=",".join(MODEL_SIZES), help="comma-separated named sizes")
    parser.add_argument("--frame", type=parse_frame, default=None, help="WxH (CPU 256x144, GPU 384x224)")
    parser.add_argument("--window", type=int, default=16, help="attention window in frames")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps per frame in the frame column")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed repeats (default: fewer for big sizes)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument("--gpu", action="store_true", help="GPU training-step comparison instead")
    parser.add_argument("--gpu-size", default="310m")
    parser.add_argument("--batch", type=int, default=4, help="GPU: clips per training step")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.gpu:
        if not torch.cuda.is_available():
            raise SystemExit("--gpu needs a CUDA device")
        width, height = args.frame or (384, 224)
        rows = []
        for backend in ("sdpa", "flex"):
            rows.append(
                bench_gpu_backend(
                    args.gpu_size, backend, width, height, args.window, args.batch, args.repeats or 10
                )
            )
            torch.cuda.empty_cache()
        print_gpu_table(rows)
        print(f"wrote {write_json('bench_model_gpu.json', {'rows': rows})}")
        return

    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in MODEL_SIZES]
    if unknown:
        raise SystemExit(f"unknown size(s) {unknown}; choose from {list(MODEL_SIZES)}")
    width, height = args.frame or (256, 144)
    default_repeats = {"tiny": 20, "130m": 5, "310m": 3, "774m": 3}
    rows = [
        bench_cpu_size(
            size, width, height, args.window, args.repeats or default_repeats.get(size, 3), args.steps
        )
        for size in tqdm(sizes, desc="sizes")
    ]
    tokenizer = bench_tokenizer(width, height, args.repeats or 20)
    print_cpu_table(rows, tokenizer)
    settings = {"threads": torch.get_num_threads(), "window": args.window, "steps": args.steps}
    path = write_json("bench_model_cpu.json", {"rows": rows, "tokenizer": tokenizer, "settings": settings})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
