"""training.export: a model directory copied with float16 networks that load and play unchanged."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from eval.speed import random_engine_parts
from gameworld.actions import Action, ActionSpace
from gameworld.engine import WorldEngine
from gameworld.modeldir import load_model_dir, save_model_dir
from gameworld.models.idm import IDMEnsemble, InverseDynamicsModel, load_idm
from gameworld.motion_prior import MotionPrior, feature_names
from training import export

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def dtypes(path) -> set[str]:
    with safe_open(str(path), "pt") as handle:
        names = list(handle.keys())  # a safetensors handle is not iterable
        return {str(handle.get_slice(name).get_dtype()) for name in names}


@pytest.fixture
def trained(tmp_path):
    """A tiny model directory whose every world-model weight matters (not the zero-initialised one)."""
    config, tokenizer, model = random_engine_parts("tiny", 64, 32, 4, "dc-f8c8")
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(0.05 * torch.randn(param.shape, generator=generator))
    source = save_model_dir(tmp_path / "trained", config, tokenizer, model)
    InverseDynamicsModel(width=32, height=18, frame_channels=(8, 8, 8), pair_channels=(8, 8),
                         hidden_size=16).save_pretrained(source / "idm")
    (source / "idm" / export.IDM_REPORT).write_text(json.dumps({"steps": 1}))
    return source


def test_export_halves_the_networks_keeps_the_card_and_plays(trained, tmp_path):
    out = tmp_path / "shipped"
    out.mkdir()
    (out / "README.md").write_text("# model card\n")
    (out / "stale.txt").write_text("from an older export")
    names = feature_names(ActionSpace.minecraft())
    prior = MotionPrior(names, tuple((0.0, -0.01 * (name == "dyaw"), 0.0) for name in names))
    prior.save(trained)
    assert export.main(["--model", str(trained), "--out", str(out)]) == 0

    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "gameworld.json", "idm", "motion_prior.json", "tokenizer", "world_model"
    ]
    assert (out / "README.md").read_text() == "# model card\n"
    assert MotionPrior.load(out) == prior
    weights = "diffusion_pytorch_model.safetensors"
    assert dtypes(out / "world_model" / weights) == {"F16"}
    assert dtypes(out / "idm" / weights) == {"F16"}
    assert dtypes(out / "tokenizer" / weights) == {"F32"}
    assert (out / "idm" / export.IDM_REPORT).read_text() == '{"steps": 1}'
    full, half = ((d / "world_model" / weights).stat().st_size for d in (trained, out))
    assert half < 0.55 * full

    _, _, original = load_model_dir(trained)
    _, _, shipped = load_model_dir(out)
    for (name, a), b in zip(original.named_parameters(), shipped.parameters(), strict=True):
        assert b.dtype == torch.float32 and torch.equal(b, a.half().float()), name
    engine = WorldEngine.from_pretrained(out, device="cpu")
    engine.reset(frames=np.full((2, 32, 64, 3), 90, np.uint8))
    assert engine.step(Action.of("forward")).shape == (32, 64, 3)


def test_bad_export_is_named(trained, tmp_path, capsys):
    with pytest.raises(SystemExit):
        export.main(["--model", str(tmp_path / "missing"), "--out", str(tmp_path / "out")])
    assert "missing: not a model directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export.main(["--model", str(trained), "--out", str(trained)])
    assert "another directory than its source" in capsys.readouterr().err
    assert (trained / "world_model").is_dir()


def test_export_ships_a_tokenizer_with_the_same_latents_and_refuses_another(trained, tmp_path, capsys):
    _, tokenizer, _ = load_model_dir(trained)
    with torch.no_grad():
        tokenizer.autoencoder.decoder.conv_in.weight.mul_(0.5)  # a decoder trained further
    tokenizer.save_pretrained(tmp_path / "tuned")
    out = tmp_path / "shipped"
    args = ["--model", str(trained), "--tokenizer"]
    assert export.main([*args, str(tmp_path / "tuned"), "--out", str(out)]) == 0
    _, shipped, _ = load_model_dir(out)
    for (name, a), b in zip(shipped.state_dict().items(), tokenizer.state_dict().values(), strict=True):
        assert torch.equal(a, b), name

    with torch.no_grad():
        tokenizer.scale.mul_(2.0)  # other latents
    tokenizer.save_pretrained(tmp_path / "other")
    with pytest.raises(SystemExit):
        export.main([*args, str(tmp_path / "other"), "--out", str(tmp_path / "no")])
    assert f"{tmp_path / 'other'}: makes other latents than the tokenizer of" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_export_halves_every_member_of_an_idm_ensemble_and_keeps_their_reports(trained, tmp_path):
    single = tmp_path / "single"
    (trained / "idm").rename(single)
    IDMEnsemble([InverseDynamicsModel.from_pretrained(single)] * 2).save_pretrained(trained / "idm")
    (trained / "idm" / "member_1" / export.IDM_REPORT).write_text('{"steps": 2}')
    out = tmp_path / "shipped"
    assert export.main(["--model", str(trained), "--out", str(out)]) == 0
    weights = "diffusion_pytorch_model.safetensors"
    assert all(dtypes(out / "idm" / f"member_{i}" / weights) == {"F16"} for i in (0, 1))
    assert (out / "idm" / "member_1" / export.IDM_REPORT).read_text() == '{"steps": 2}'
    assert not (out / "idm" / "member_0" / export.IDM_REPORT).exists()
    assert isinstance(load_idm(out / "idm"), IDMEnsemble)
