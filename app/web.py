"""Play in the browser: `python -m app.web [--model DIR | --voxel] [--host 127.0.0.1] [--port 7860]`.

What plays: a world model given with `--model DIR`, else the shipped default model when
`gameworld/pretrained/default/` exists, else the voxel game. Each browser tab gets its own world
(at most --max-sessions at once; a world with no input for --idle-timeout seconds is closed).
The server listens on 127.0.0.1 only unless --host says otherwise, and never makes a public link.
"""

from __future__ import annotations

import argparse

from gameworld.motion_prior import add_motion_prior_arguments, motion_prior_settings
from gameworld.ui import SourceChoice, source_factory
from gameworld.ui.web import WebConfig, WebDemo


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app.web", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--voxel", action="store_true", help="serve the voxel game itself")
    parser.add_argument("--model", metavar="DIR", help="a model directory (default: the shipped one)")
    parser.add_argument("--device", help="cpu, cuda, mps (default: the fastest there is)")
    parser.add_argument("--steps", type=int, help="denoising steps per frame (default: the model's)")
    parser.add_argument("--speculative", type=int, help="frames generated ahead while an action holds")
    parser.add_argument("--temperature", type=float,
                        help="scale of each frame's starting noise: < 1 calmer (default: the model's)")
    add_motion_prior_arguments(parser)
    parser.add_argument("--host", default=WebConfig.host, help="address to listen on (default: loopback)")
    parser.add_argument("--port", type=int, default=WebConfig.port)
    parser.add_argument("--max-sessions", type=int, default=WebConfig.max_sessions, help="worlds at once")
    parser.add_argument("--idle-timeout", type=float, default=WebConfig.idle_timeout_s,
                        help="seconds without input before a world is closed")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    given = {"steps": args.steps, "speculative": args.speculative, "temperature": args.temperature}
    settings = {name: value for name, value in given.items() if value is not None}
    settings.update(motion_prior_settings(args))
    try:
        choice = SourceChoice(voxel=args.voxel, model=args.model, device=args.device, settings=settings)
        config = WebConfig(host=args.host, port=args.port, max_sessions=args.max_sessions,
                           idle_timeout_s=args.idle_timeout)
        factory = source_factory(choice)
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    WebDemo(factory, config).launch()


if __name__ == "__main__":
    main()
