"""Put trained IDMs together as one IDM directory that reads with all of them (`IDMEnsemble`).

    python -m training.idm_ensemble --out MODEL_DIR/idm --float16 runs/idm_a/idm runs/idm_b/idm

Each member keeps its own folder (`member_0`, ...) with its held-out report; `ensemble.json` names
them. Evaluation reads a clip as the mean of the members' outputs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

from gameworld.atomic import staged_directory
from gameworld.models.idm import IDM_REPORT, IDMEnsemble, InverseDynamicsModel, load_idm, member_folder


def make_ensemble(members: list[Path], out: Path, torch_dtype: torch.dtype | None = None) -> IDMEnsemble:
    """Write the IDMs in the directories `members` to `out` as an ensemble (weights in `torch_dtype`,
    as they are where None); returns it."""
    idms = [load_idm(path, torch_dtype) for path in members]
    for path, idm in zip(members, idms, strict=True):
        if not isinstance(idm, InverseDynamicsModel):
            raise ValueError(f"{path}: is an ensemble itself; name its members instead")
    ensemble = IDMEnsemble(idms)
    with staged_directory(out) as staging:
        ensemble.save_pretrained(staging)
        for index, path in enumerate(members):
            if (path / IDM_REPORT).is_file():
                shutil.copy2(path / IDM_REPORT, staging / member_folder(index))
    return ensemble


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("members", nargs="+", type=Path, help="IDM directories (from training.train_idm)")
    parser.add_argument("--out", type=Path, required=True, help="the ensemble's directory")
    parser.add_argument("--float16", action="store_true", help="store the weights in float16, as shipped")
    args = parser.parse_args(argv)
    if len(args.members) < 2:
        parser.error("an ensemble needs two or more IDMs")
    try:
        make_ensemble(args.members, args.out, torch.float16 if args.float16 else None)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    print(f"IDM ensemble of {len(args.members)} written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
