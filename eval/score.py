"""GameWorld Score on the voxel game: generated clips against the game's own ground truth.

    python -m eval.score --model gameworld/pretrained/default --protocol quick --out eval/results/default
    python -m eval.score --model runs/distill/model --teacher runs/world/model --protocol full \\
        --lpips weights/lpips_vgg.safetensors --i3d weights/i3d_torchscript.pt \\
        --i3d-kwargs '{"rescale": false, "resize": false, "return_features": true}' \\
        --out eval/results/full --export-gameworld out/gameworld_videos

Writes `results.json`, `results.md`, PNG plots and `grid.mp4` (a column per clip; rows: the model,
the teacher if given, copy-last-frame, ground truth) to `--out`. `--start-from FILE ...` plays the
clips from your images, episodes or videos (e.g. real Minecraft) instead of voxel worlds: there is
no ground truth then, and only what needs none is scored. The controllability IDM is the
model directory's `idm/` unless `--idm` names one; LPIPS and FVD need local weights and are
otherwise reported as not computed. Metric definitions: eval/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from gameworld.engine import WorldEngine
from gameworld.metrics.encoder import NORMALISATIONS, ImageFeatures
from gameworld.metrics.evaluate import (
    COPY_LAST,
    MOVED_LAST,
    Scorers,
    copy_last_generator,
    engine_generator,
    evaluate,
    moved_last_generator,
)
from gameworld.metrics.fvd import I3DFeatures
from gameworld.metrics.lpips import LPIPS
from gameworld.metrics.protocol import PROTOCOLS, Protocol
from gameworld.metrics.report import command_line, gameworld_names, write_mp4, write_report
from gameworld.modeldir import read_config, resolve_model_dir
from gameworld.models.idm import load_idm
from gameworld.motion_prior import add_motion_prior_arguments, motion_prior_settings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="model directory (or a shipped model's name)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="quick")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--teacher", help="a second model directory scored on the clips (e.g. the teacher)")
    parser.add_argument("--steps", type=int, help="denoising steps of the model (default: its own)")
    parser.add_argument("--teacher-steps", type=int, help="denoising steps of the teacher (default: its own)")
    parser.add_argument("--guidance", type=float, help="action guidance of the model (default: its own)")
    parser.add_argument("--temperature", type=float,
                        help="scale of the model's starting noise per frame (default: its own)")
    parser.add_argument("--context-noise", type=float,
                        help="noise level the model's past frames are held at (default: its own)")
    add_motion_prior_arguments(parser)
    parser.add_argument("--idm", type=Path, help="IDM directory (default: <model>/idm)")
    parser.add_argument("--lpips", type=Path, help="LPIPS weights (safetensors, see gameworld.metrics.lpips)")
    parser.add_argument("--lpips-net", choices=("vgg", "alex"), default="vgg")
    parser.add_argument("--i3d", type=Path, help="I3D TorchScript file for FVD")
    parser.add_argument(
        "--i3d-kwargs", type=json.loads, default={}, help="JSON keyword arguments for the I3D call"
    )
    parser.add_argument(
        "--encoder", type=Path, help="image encoder (TorchScript) for the feature cosines (default: IDM's)"
    )
    parser.add_argument("--encoder-resolution", type=int, default=224, help="the encoder's square input size")
    parser.add_argument(
        "--encoder-normalise", choices=sorted(NORMALISATIONS), default="imagenet",
        help="the mean and std the encoder expects of images in [0, 1]",
    )
    parser.add_argument(
        "--export-gameworld", type=Path, help="also write the model's clips in the official layout"
    )
    parser.add_argument("--starts", type=int, default=4, help="start positions per biome (full protocol)")
    parser.add_argument(
        "--seed-base", type=int, default=Protocol.seed_base,
        help="world seeds of the clips: base + 100 x biome + start (another base: other held-out worlds)",
    )
    parser.add_argument(
        "--start-from", nargs="+", default=(), metavar="FILE",
        help="images, episodes or videos to start the clips from instead of voxel worlds (no ground truth)",
    )
    parser.add_argument("--frames", type=int, default=65, help="frames per clip, the start frame included")
    parser.add_argument(
        "--context", type=int, default=4, help="context frames of scripted play before a clip"
    )
    parser.add_argument(
        "--long-frames", type=int, default=1000, help="frames of the idle and walking rollouts"
    )
    parser.add_argument("--seed", type=int, default=0, help="noise seed of the engine")
    parser.add_argument("--device", default=None, help="cuda | mps | cpu (default: the best available)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = command_line("eval.score", argv)
    try:
        model_dir = resolve_model_dir(args.model)
        config = read_config(model_dir)
        protocol = Protocol(
            args.protocol,
            starts_per_biome=args.starts,
            seed_base=args.seed_base,
            starts_from=tuple(args.start_from),
            frames=args.frames,
            context=args.context,
            long_frames=args.long_frames,
            width=config.width,
            height=config.height,
        )
        for index in range(len(protocol.starts_from)):
            protocol.user_start(index)  # an unreadable file fails here, not after an hour of clips
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        settings = {"steps": args.steps, "guidance": args.guidance, "temperature": args.temperature,
                    "context_noise": args.context_noise}
        overrides = {name: value for name, value in settings.items() if value is not None}
        overrides.update(motion_prior_settings(args))
        engine = WorldEngine.from_pretrained(model_dir, device=device, seed=args.seed, **overrides)
        idm_dir = args.idm or model_dir / "idm"
        scorers = Scorers(
            idm=load_idm(idm_dir).to(device).eval() if args.idm or idm_dir.is_dir() else None,
            lpips=LPIPS.from_file(args.lpips, args.lpips_net).to(device) if args.lpips else None,
            i3d=I3DFeatures(args.i3d, call_kwargs=args.i3d_kwargs, device=device) if args.i3d else None,
            encoder=ImageFeatures(args.encoder, args.encoder_resolution, args.encoder_normalise, device)
            if args.encoder
            else None,
        )
        teacher = {}
        if args.teacher:
            steps = {"steps": args.teacher_steps} if args.teacher_steps else {}
            teacher_engine = WorldEngine.from_pretrained(args.teacher, device=device, seed=args.seed, **steps)
            if (teacher_engine.config.width, teacher_engine.config.height) != (config.width, config.height):
                raise ValueError(f"{args.teacher}: the teacher's frame size differs from the model's")
            teacher["teacher"] = engine_generator(teacher_engine)
    except (FileNotFoundError, ValueError) as err:
        print(f"eval.score: {err}", file=sys.stderr)
        return 2

    if scorers.idm is None:
        print(f"eval.score: no IDM in {idm_dir}: controllability is not computed", file=sys.stderr)
    on_generated = None
    if args.export_gameworld:
        names = gameworld_names(protocol.clips())
        args.export_gameworld.mkdir(parents=True, exist_ok=True)

        def on_generated(row, clip, frames):
            if row == "model":
                write_mp4(args.export_gameworld / names[clip.key], frames, config.fps)

    generators = {"model": engine_generator(engine), COPY_LAST: copy_last_generator}
    if engine.settings.motion_prior is not None:
        generators[MOVED_LAST] = moved_last_generator(engine.prior)
    results, kept = evaluate(
        protocol, generators, scorers, clip_generators=teacher, on_generated=on_generated
    )
    results["model"] = str(model_dir)
    results["teacher"] = args.teacher
    results["engine"] = {**asdict(engine.settings.sampling), "still_level": engine.settings.still_level,
                         "device": str(engine.device), "seed": args.seed}
    write_report(args.out, results, kept, command)
    print((args.out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
