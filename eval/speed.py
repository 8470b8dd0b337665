"""Speed benchmarks: frames per second, as a table and JSON (medians over many frames).

    python -m eval.speed --voxel                      # the voxel game at 256x144 and 128x128, one core
    python -m eval.speed --engine                     # WorldEngine: the default CPU model, random weights
    python -m eval.speed --engine --model DIR         # ... or a model directory
    python -m eval.speed --engine --size 310m --frame 384x224 --windows 32 --steps 4 --compile --cuda-graphs
    python -m eval.speed --spec-quality --model DIR   # joint speculative frames: PSNR to the voxel game

Each mode is one function returning rows; `main` picks the mode, prints the table and writes
`eval/results/<mode>_speed.json` (the engine modes: `eval/results/engine_<device>/speed*.json`).

The engine rows time `WorldEngine.step` (denoising, commit and decoding) on a held-action script
(runs of 8-24 frames of one action) once the cache holds a full window: frames/s is the median over
`--runs` runs, latency the median and 90th percentile over every timed frame. Configurations of one
model are timed run by run in turn, so a change in machine load hits them alike; the cache-on/off
and speculative-on/off ratios come from the same run. Speed does not depend on the weights: without
`--model` the models are random, built from the registry sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

RESULTS = Path(__file__).resolve().parent / "results"


def parse_sizes(text: str) -> list[tuple[int, int]]:
    try:
        return [tuple(int(v) for v in item.lower().split("x")) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must look like 256x144,128x128, got {text!r}") from None


def bench_voxel(
    sizes: list[tuple[int, int]], frames: int = 100, warmup: int = 10, seed: int = 0,
    biomes: tuple[str, ...] | None = None,
) -> list[dict]:
    """Time `VoxelWorld.step` (tick + render + HUD) and `render` alone, per size over the biomes.

    The player is the seeded `ScriptedPlayer`, so the camera turns and walks as in generated data.
    """
    from gameworld.voxel import BIOMES, VoxelWorld
    from gameworld.voxel.players import ScriptedPlayer

    rows = []
    for width, height in sizes:
        step_s, render_s = [], []
        for biome in tqdm(biomes or BIOMES, desc=f"voxel {width}x{height}", leave=False):
            world = VoxelWorld(seed=seed, biome=biome, width=width, height=height)
            player = ScriptedPlayer(seed)
            world.reset()
            info = world.info()
            for t in range(warmup + frames):
                action = player.act(info)
                start = time.perf_counter()
                _, info = world.step(action)
                middle = time.perf_counter()
                world.render()
                end = time.perf_counter()
                if t >= warmup:
                    step_s.append(middle - start)
                    render_s.append(end - middle)
        median_step = statistics.median(step_s)
        rows.append({
            "mode": "voxel", "width": width, "height": height, "frames": len(step_s),
            "step_fps": 1.0 / median_step, "render_fps": 1.0 / statistics.median(render_s),
            "step_ms_median": 1000 * median_step,
            "step_ms_p90": 1000 * statistics.quantiles(step_s, n=10)[-1],
        })
    return rows


TEACHER_STEPS = 32  # "teacher" in --steps: the many-step sampling a distilled student replaces


def held_action_script(length: int, seed: int = 0) -> list:
    """Runs of 8-24 frames of one held action (keys, or a steady turn), seeded."""
    from gameworld.actions import Action

    choices = [
        Action.of("forward"), Action.of("forward", "sprint"), Action.of("back"), Action.of("left"),
        Action.of("right"), Action.of("forward", "jump"), Action.null(), Action.of("attack"),
        Action.of(camera=(0.0, 3.0)), Action.of(camera=(0.0, -3.0)), Action.of("forward", camera=(0.0, 2.0)),
    ]
    rng = np.random.default_rng(seed)
    script = []
    while len(script) < length:
        script += [choices[rng.integers(len(choices))]] * int(rng.integers(8, 25))
    return script[:length]


def parse_steps(text: str) -> list[int]:
    try:
        return [TEACHER_STEPS if item == "teacher" else int(item) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"steps must look like 1,2,4,teacher, got {text!r}") from None


def random_engine_parts(size: str, width: int, height: int, window: int, tokenizer: str):
    """(config, tokenizer, world model) with random weights: a named DiT size over a named tokenizer."""
    import torch

    from gameworld.modeldir import GameWorldConfig
    from gameworld.models import FrameTokenizer, NextFrameDiT

    torch.manual_seed(0)
    tok = FrameTokenizer.from_config(tokenizer).eval()
    channels, latent_h, latent_w = tok.latent_shape(height, width)
    model = NextFrameDiT.from_size(
        size, in_channels=channels, latent_height=latent_h, latent_width=latent_w, max_frames=window
    )
    config = GameWorldConfig(width=width, height=height, context_frames=window, description=f"random {size}")
    return config, tok, model


def time_runs(engines: dict, script: list, frames: int, runs: int) -> dict[str, dict]:
    """Step every engine through `runs` runs of `frames` frames of `script`, one run each in turn.

    Engines start where warm-up left them; returns per engine fps per run and latency per frame,
    or the error of a compiled engine that failed (it is left out of the later runs).
    """
    import torch

    timing = {name: {"fps_runs": [], "latency_s": [], "cpu_s": 0.0} for name in engines}
    position = {name: 0 for name in engines}
    for _ in range(runs):
        for name, engine in engines.items():
            if "error" in timing[name]:
                continue
            actions = [script[(position[name] + i) % len(script)] for i in range(frames)]
            position[name] += frames
            cpu, start = time.process_time(), time.perf_counter()
            try:
                for action in actions:
                    engine.step(action)
                    timing[name]["latency_s"].append(engine.stats.last_latency_s)
            except Exception as err:
                if not (engine.settings.compile or engine.settings.cuda_graphs):
                    raise
                timing[name]["error"] = err
                continue
            if engine.device.type == "cuda":
                torch.cuda.synchronize(engine.device)
            timing[name]["fps_runs"].append(frames / (time.perf_counter() - start))
            timing[name]["cpu_s"] += time.process_time() - cpu
    return timing


def bench_engine(
    parts,
    label: dict,
    steps_list: list[int],
    speculative: int,
    compile_options: list[str],
    device,
    frames: int,
    runs: int,
    prior=None,
) -> list[dict]:
    """Rows for one model: every steps x cache on/off x speculative on/off x compile option.

    A compile option is "off", "compile" (torch.compile) or "graphs" (compiled with CUDA graphs).
    `prior`: the model directory's motion prior, which its sampler settings may ask for.
    """
    import torch

    from gameworld.engine import WorldEngine, default_dtype

    config, tokenizer, model = parts
    window = model.config.max_frames
    script = held_action_script(4096)
    rows = []
    for steps in steps_list:
        timed = max(4, frames // 4) if steps >= TEACHER_STEPS else frames
        engines, settings = {}, {}
        for compiled in compile_options:
            flags = dict(compile=compiled == "compile", cuda_graphs=compiled == "graphs")
            for use_cache in (True, False) if compiled == "off" else (True,):  # compiled: cached only
                for ahead in sorted({0, speculative}):
                    name = f"cache={use_cache} spec={ahead} compile={compiled}"
                    settings[name] = dict(use_cache=use_cache, speculative=ahead, **flags)
                    try:  # a compiler failure costs its own row, not the whole benchmark
                        engine = WorldEngine(config, tokenizer, model, device, default_dtype(device),
                                             prior, steps=steps, **settings[name])
                        engine.reset()
                        engine.rollout(script[: window + 4])  # warm-up: a full window in the cache
                        engines[name] = engine
                    except Exception as err:
                        if compiled == "off":
                            raise
                        rows.append(failed_row(label, window, steps, settings[name], err))
        with torch.inference_mode():
            timing = time_runs(engines, script[window + 4 :], timed, runs)
        for name, engine in engines.items():
            t = timing[name]
            if "error" in t:
                rows.append(failed_row(label, window, steps, settings[name], t["error"]))
                continue
            stats = engine.stats
            rows.append({
                "mode": "engine", **label, "window": window, "tokens_per_frame": model.tokens_per_frame,
                "steps": steps, **settings[name], "device": str(engine.device),
                "dtype": str(engine.dtype).removeprefix("torch."), "threads": torch.get_num_threads(),
                "frames_per_run": timed, "runs": runs,
                "fps": statistics.median(t["fps_runs"]), "fps_runs": t["fps_runs"],
                "latency_ms_median": 1000 * statistics.median(t["latency_s"]),
                "latency_ms_p90": 1000 * float(np.percentile(t["latency_s"], 90)),
                "cpu_ms_per_frame": 1000 * t["cpu_s"] / (timed * runs),
                "acceptance_rate": stats.acceptance_rate,
            })
    add_ratios(rows)
    return rows


def failed_row(label: dict, window: int, steps: int, settings: dict, err: BaseException) -> dict:
    """A configuration that could not run (a compiler error, say): what it was and why."""
    return {"mode": "engine", **label, "window": window, "steps": steps, **settings,
            "error": f"{type(err).__name__}: {str(err)[:500]}"}


def add_ratios(rows: list[dict]) -> None:
    """cache on / off (speculation off) and speculative on / off (cache on), from the same run."""
    keys = ("size", "window", "steps", "compile", "cuda_graphs", "use_cache", "speculative")
    rows = [r for r in rows if "error" not in r]

    def find(row, **changes):
        wanted = {**{k: row.get(k) for k in keys}, **changes}
        return next((r for r in rows if all(r.get(k) == v for k, v in wanted.items())), None)

    for row in rows:
        off = find(row, use_cache=False)
        if row["use_cache"] and off is not None and row["speculative"] == off["speculative"]:
            row["cache_speedup"] = row["fps"] / off["fps"]
        plain = find(row, speculative=0)
        if row["speculative"] and plain is not None:
            row["speculative_speedup"] = row["fps"] / plain["fps"]


def compile_label(row: dict) -> str:
    return "graphs" if row.get("cuda_graphs") else "on" if row["compile"] else "off"


def print_engine_table(rows: list[dict]) -> None:
    failed = [r for r in rows if "error" in r]
    rows = [r for r in rows if "error" not in r]
    first = rows[0]
    print(
        f"{first['size']} ({first['params_m']:.1f}M) at {first['frame']}, "
        f"{first['tokens_per_frame']} tokens/frame, {first['device']} {first['dtype']}, "
        f"{first['threads']} thread(s); {first['runs']} runs"
    )
    print(
        f"{'window':>6}{'steps':>6}{'cache':>6}{'spec':>5}{'compile':>8}{'fps':>7}{'ms med':>8}{'ms p90':>8}"
        f"{'cpu ms':>8}{'accept':>7}{'cache x':>8}{'spec x':>7}"
    )
    for r in rows:
        accept = "" if r["acceptance_rate"] is None else f"{100 * r['acceptance_rate']:.0f}%"
        cache_x = f"{r['cache_speedup']:.2f}" if "cache_speedup" in r else ""
        spec_x = f"{r['speculative_speedup']:.2f}" if "speculative_speedup" in r else ""
        steps = "T" + str(r["steps"]) if r["steps"] >= TEACHER_STEPS else str(r["steps"])
        print(
            f"{r['window']:>6}{steps:>6}{'on' if r['use_cache'] else 'off':>6}{r['speculative']:>5}"
            f"{compile_label(r):>8}{r['fps']:>7.1f}{r['latency_ms_median']:>8.1f}"
            f"{r['latency_ms_p90']:>8.1f}{r['cpu_ms_per_frame']:>8.1f}{accept:>7}{cache_x:>8}{spec_x:>7}"
        )
    for r in failed:
        print(f"{r['window']:>6}{r['steps']:>6}{'on' if r['use_cache'] else 'off':>6}{r['speculative']:>5}"
              f"{compile_label(r):>8}  failed: {r['error'][:80]}")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images, in dB."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def bench_spec_quality(
    parts, device, speculative: int, clips: int, length: int, prior=None
) -> list[dict]:
    """PSNR to the voxel game (ground truth) of the plain engine and of joint speculative frames.

    Held-out rollouts: world seeds from 10,000 on, every biome in turn, held-action scripts; both
    engines start from the voxel game's first frame and replay the same actions as the game.
    """
    from gameworld.engine import WorldEngine, default_dtype
    from gameworld.voxel import BIOMES, VoxelWorld

    config, tokenizer, model = parts
    engines = {
        name: WorldEngine(config, tokenizer, model, device, default_dtype(device), prior, speculative=ahead)
        for name, ahead in (("plain", 0), ("joint", speculative))
    }
    scores = {name: [] for name in engines}
    for clip in tqdm(range(clips), desc="held-out clips"):
        seed, biome = 10_000 + clip, BIOMES[clip % len(BIOMES)]
        script = held_action_script(length, seed)
        world = VoxelWorld(seed=seed, biome=biome, width=config.width, height=config.height)
        world.reset()
        truth = [world.step(action)[0] for action in script]
        for name, engine in engines.items():
            engine.reset(seed=seed, biome=biome)
            frames = engine.rollout(script)
            scores[name].append(statistics.fmean(psnr(f, t) for f, t in zip(frames, truth, strict=True)))
    plain, joint = statistics.fmean(scores["plain"]), statistics.fmean(scores["joint"])
    return [{
        "mode": "spec_quality", "clips": clips, "frames_per_clip": length, "speculative": speculative,
        "psnr_plain_db": plain, "psnr_joint_db": joint, "difference_db": joint - plain,
        "acceptance_rate": engines["joint"].stats.acceptance_rate, "device": str(device),
        "psnr_plain_per_clip": scores["plain"], "psnr_joint_per_clip": scores["joint"],
    }]


def print_table(rows: list[dict]) -> None:
    print(
        f"{'mode':<8}{'size':>10}{'frames':>8}{'step fps':>10}{'render fps':>12}"
        f"{'ms median':>11}{'ms p90':>9}"
    )
    for r in rows:
        size = f"{r['width']}x{r['height']}"
        print(
            f"{r['mode']:<8}{size:>10}{r['frames']:>8}{r['step_fps']:>10.1f}{r['render_fps']:>12.1f}"
            f"{r['step_ms_median']:>11.2f}{r['step_ms_p90']:>9.2f}"
        )


def write_json(path: Path, rows: list[dict], settings: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "rows": rows, "settings": settings,
        "machine": {
            "platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()
        },
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)


def pin_to_one_core() -> int | None:
    """Run this process on a single CPU (Linux), so figures are per core; returns the CPU or None."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def engine_main(args, parser: argparse.ArgumentParser) -> int:
    """--engine and --spec-quality: a model directory, or random weights at the chosen sizes."""
    import torch

    from gameworld.engine import default_device
    from gameworld.modeldir import load_model_dir
    from gameworld.motion_prior import find_motion_prior

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else default_device()
    width, height = args.frame
    models = []  # (label, parts)
    prior = None
    if args.model:
        config, tokenizer, model = load_model_dir(args.model, device)
        prior = find_motion_prior(args.model)
        label = {"size": Path(args.model).name, "frame": f"{config.width}x{config.height}"}
        models.append((label, (config, tokenizer, model)))
    else:
        for size in args.size.split(","):
            for window in args.windows:
                parts = random_engine_parts(size, width, height, window, args.tokenizer)
                label = {"size": size, "frame": f"{width}x{height}", "tokenizer": args.tokenizer}
                models.append((label, parts))
    rows = []
    for label, parts in models:
        label["params_m"] = sum(p.numel() for p in parts[2].parameters()) / 1e6
        if args.spec_quality:
            rows += bench_spec_quality(parts, device, args.speculative, args.clips, args.frames or 64, prior)
            continue
        compile_options = ["off"] + ["compile"] * args.compile + ["graphs"] * args.cuda_graphs
        model_rows = bench_engine(
            parts, label, args.steps, args.speculative, compile_options, device, args.frames or 24, args.runs,
            prior,
        )
        print_engine_table(model_rows)
        rows += model_rows
    if args.spec_quality:
        for r in rows:
            print(
                f"{r['clips']} clips x {r['frames_per_clip']} frames: "
                f"PSNR plain {r['psnr_plain_db']:.2f} dB, "
                f"joint speculative ({r['speculative']} ahead) {r['psnr_joint_db']:.2f} dB, "
                f"difference {r['difference_db']:+.2f} dB"
            )
    name = "speculative_quality" if args.spec_quality else "speed"
    windows = "-".join(str(w) for w in args.windows)
    sizes = args.size.replace(",", "-")
    tag = Path(args.model).name if args.model else f"{sizes}_{width}x{height}_w{windows}"
    out = args.out or RESULTS / f"engine_{device.type}" / f"{name}_{tag}.json"
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "sizes", "all_cores", "voxel")}
    cuda = device.type == "cuda"
    settings["device_name"] = torch.cuda.get_device_name(device) if cuda else platform.processor()
    write_json(out, rows, {k: (str(v) if isinstance(v, Path) else v) for k, v in settings.items()})
    print(f"wrote {out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--voxel", action="store_true", help="benchmark the voxel game")
    mode.add_argument("--engine", action="store_true", help="benchmark WorldEngine")
    mode.add_argument("--spec-quality", action="store_true",
                      help="PSNR of joint speculative frames vs the plain engine (needs a trained --model)")
    parser.add_argument("--sizes", type=parse_sizes, default=[(256, 144), (128, 128)], help="voxel: WxH,WxH")
    parser.add_argument("--frames", type=int, help="timed frames per biome and size (voxel, default 100), "
                        "per run (engine, default 24) or per clip (spec-quality, default 64)")
    parser.add_argument("--out", type=Path, help="JSON path (default under eval/results/)")
    parser.add_argument("--all-cores", action="store_true", help="voxel: do not pin the process to one core")
    engine = parser.add_argument_group("engine modes")
    engine.add_argument("--model", help="a model directory (default: random weights of --size)")
    engine.add_argument("--size", default="tiny", help="registry size(s), comma-separated")
    engine.add_argument("--frame", type=lambda t: parse_sizes(t)[0], default=(256, 144), help="WxH")
    engine.add_argument("--tokenizer", default="dc-f8c8", help="tokenizer config name")
    engine.add_argument("--windows", type=lambda t: [int(v) for v in t.split(",")], default=[16, 8],
                        help="attention windows in frames, comma-separated")
    engine.add_argument("--steps", type=parse_steps, default=parse_steps("1,2,4,teacher"),
                        help=f"denoising steps, comma-separated; teacher = {TEACHER_STEPS}")
    engine.add_argument("--speculative", type=int, default=4, help="frames ahead in the speculative rows")
    engine.add_argument("--compile", action="store_true", help="also time compiled engines")
    engine.add_argument("--cuda-graphs", action="store_true",
                        help="also time engines compiled with CUDA graphs (CUDA only)")
    engine.add_argument("--runs", type=int, default=3, help="timed runs per configuration (median)")
    engine.add_argument("--device", help="cpu, cuda, mps (default: the fastest there is)")
    engine.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    engine.add_argument("--clips", type=int, default=16, help="spec-quality: held-out clips")
    args = parser.parse_args(argv)
    if args.frames is not None and args.frames < 2:
        parser.error("--frames must be at least 2")
    if args.engine or args.spec_quality:
        if args.runs < 3 and args.engine:
            parser.error("--runs must be at least 3 (the figures are medians)")
        return engine_main(args, parser)
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    cpu = None if args.all_cores else pin_to_one_core()
    frames = args.frames or 100
    rows = bench_voxel(args.sizes, frames=frames)
    print_table(rows)
    out = args.out or RESULTS / "voxel_speed.json"
    write_json(out, rows, {"frames_per_biome": frames, "pinned_cpu": cpu, "threads": 1})
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
