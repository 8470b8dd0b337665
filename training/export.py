"""Copy a trained model directory to where it ships, its networks stored in float16.

    python -m training.export --model runs/default/model --out gameworld/pretrained/default
    python -m training.export --model runs/default/model --tokenizer runs/default/decoder/tokenizer --out ...

`--tokenizer` ships another tokenizer than the model's own, one that makes the very same latents (the
same `fingerprint`: the same encoder, shift and scale), such as one whose decoder trained further
(`training.train_tokenizer ... train_encoder=false`).

Training writes float32 weights; a model kept in the repository needs only half of that. The
engine and the IDM load float16 weights into float32 (or bfloat16) modules, so only the storage
changes: each weight moves by at most one part in 2048. The tokenizer stays float32 (its latent
shift and scale are calibrated to it, and it is small). The copy is made under a temporary name
and swapped into place; a model card (`README.md`) already in `--out` is kept.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

from gameworld.atomic import staged_directory
from gameworld.modeldir import load_model_dir, resolve_model_dir, write_config
from gameworld.models.dit import NextFrameDiT
from gameworld.models.idm import IDM_REPORT, load_idm
from gameworld.models.tokenizer import FrameTokenizer
from gameworld.motion_prior import PRIOR_NAME

MODEL_CARD = "README.md"


def export_model_dir(
    source: str | Path,
    out: str | Path,
    dtype: torch.dtype = torch.float16,
    tokenizer_dir: str | Path | None = None,
) -> Path:
    """Write the model directory `source` to `out` with its world model and IDM weights in `dtype`.

    `tokenizer_dir`: a tokenizer to ship instead of the model's own; it must make the same latents.
    """
    source, out = resolve_model_dir(source), Path(out)
    if source.resolve() == out.resolve():
        raise ValueError(f"{out}: export needs another directory than its source")
    config, tokenizer, _ = load_model_dir(source)  # checks the whole directory first
    if tokenizer_dir is not None:
        replacement = FrameTokenizer.from_pretrained(tokenizer_dir)
        theirs, ours = replacement.fingerprint(), tokenizer.fingerprint()
        if theirs != ours:
            raise ValueError(f"{tokenizer_dir}: makes other latents than the tokenizer of {source} "
                             f"(fingerprint {theirs}, not {ours}); "
                             "only a tokenizer with the same encoder, shift and scale can replace it")
        tokenizer = replacement
    with staged_directory(out) as staging:
        tokenizer.save_pretrained(staging / "tokenizer")
        NextFrameDiT.from_pretrained(source / "world_model", torch_dtype=dtype).save_pretrained(
            staging / "world_model"
        )
        if (source / "idm").is_dir():
            load_idm(source / "idm", torch_dtype=dtype).save_pretrained(staging / "idm")
            for report in (source / "idm").rglob(IDM_REPORT):  # an ensemble's members have one each
                shutil.copy2(report, staging / "idm" / report.relative_to(source / "idm"))
        write_config(staging, config)
        if (source / PRIOR_NAME).is_file():
            shutil.copy2(source / PRIOR_NAME, staging)
        if (out / MODEL_CARD).is_file():
            shutil.copy2(out / MODEL_CARD, staging)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="the trained model directory")
    parser.add_argument("--out", type=Path, required=True, help="where the copy goes")
    parser.add_argument("--tokenizer", help="ship this tokenizer directory instead (same latents, e.g. a "
                        "decoder trained further)")
    args = parser.parse_args(argv)
    try:
        out = export_model_dir(args.model, args.out, tokenizer_dir=args.tokenizer)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"exported {args.model} to {out} ({size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
