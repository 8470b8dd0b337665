"""Recipes: YAML -> dataclasses, `extends`, `key=value` overrides, type checks, errors naming the file."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from training.config import ConfigError, apply_overrides, load_config, parse_job_args, to_dict
from training.train import WorldModelJob
from training.train_tokenizer import TokenizerJob
from training.trainer import TrainerConfig

CONFIGS = Path(__file__).resolve().parents[1] / "training" / "configs"


@dataclass
class Inner:
    rate: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    name: str | None = None


@dataclass
class Outer:
    steps: int = 10
    flag: bool = False
    extra: dict = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_yaml_fills_nested_dataclasses_and_keeps_defaults(tmp_path):
    recipe = write(tmp_path / "r.yaml", "steps: 5\ninner:\n  rate: 1.0e-4\n  betas: [0.8, 0.99]\n")
    cfg = load_config(Outer, recipe)
    assert cfg == Outer(steps=5, inner=Inner(rate=1e-4, betas=(0.8, 0.99)))
    assert isinstance(cfg.inner.betas, tuple)


def test_overrides_parse_yaml_values_and_coerce_to_the_field_type(tmp_path):
    recipe = write(tmp_path / "r.yaml", "steps: 5\n")
    overrides = ["inner.rate=1e-4", "flag=true", "inner.name=null", "extra.k=3", "steps=7"]
    cfg = load_config(Outer, recipe, overrides)
    assert cfg.inner.rate == 1e-4 and isinstance(cfg.inner.rate, float)  # YAML reads "1e-4" as a string
    assert cfg.flag is True and cfg.inner.name is None and cfg.extra == {"k": 3} and cfg.steps == 7


def test_extends_merges_the_child_over_its_base(tmp_path):
    write(tmp_path / "base.yaml", "steps: 5\ninner:\n  rate: 0.5\n  name: base\n")
    child = write(tmp_path / "child.yaml", "extends: base.yaml\ninner:\n  name: child\n")
    assert load_config(Outer, child) == Outer(steps=5, inner=Inner(rate=0.5, name="child"))


@pytest.mark.parametrize(
    "text, message",
    [
        ("stepz: 3\n", "unknown key(s) ['stepz']"),
        ("steps: three\n", "r.yaml.steps: expected an integer"),
        ("flag: 1\n", "r.yaml.flag: expected true or false"),
        ("inner:\n  betas: [0.9]\n", "r.yaml.inner.betas: expected 2 values"),
        ("inner: 3\n", "r.yaml.inner: expected a mapping"),
        ("steps: [1\n", "r.yaml: not valid YAML"),
        ("- 1\n- 2\n", "a recipe must be a mapping"),
    ],
)
def test_bad_recipes_name_the_file_and_the_key(tmp_path, text, message):
    recipe = write(tmp_path / "r.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_config(Outer, recipe)
    assert message in str(err.value)


def test_bad_overrides_are_explained(tmp_path):
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides({}, ["steps"])
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(Outer, None, ["inner.nope=1"])
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(Outer, tmp_path / "missing.yaml")


def test_dataclass_validation_errors_become_config_errors():
    with pytest.raises(ConfigError, match="max_steps"):
        load_config(TrainerConfig, None, ["max_steps=0"])
    with pytest.raises(ConfigError, match="precision"):
        load_config(TrainerConfig, None, ["precision=fp8"])


@pytest.mark.parametrize("name", ["smoke", "default", "130m", "310m"])
def test_every_world_model_recipe_loads(name):
    cfg = load_config(WorldModelJob, CONFIGS / f"{name}.yaml")
    assert cfg.train.max_steps >= 1 and cfg.data.clip_len >= 2
    assert to_dict(load_config(WorldModelJob, None, _as_overrides(to_dict(cfg)))) == to_dict(cfg)


def _as_overrides(data: dict, prefix: str = "") -> list[str]:
    """A config dict written back as key=value overrides (round trip through the command line)."""
    import json

    items = []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            items += _as_overrides(value, f"{prefix}{key}.")
        else:
            items.append(f"{prefix}{key}={json.dumps(value)}")
    return items


def test_large_recipes_use_the_gpu_machinery():
    big = load_config(WorldModelJob, CONFIGS / "310m.yaml")
    assert big.model.size == "310m" and big.train.strategy == "fsdp" and big.train.grad_checkpointing
    assert big.train.compile and big.train.precision == "auto"  # bf16 autocast on CUDA
    assert load_config(WorldModelJob, CONFIGS / "130m.yaml").model.size == "130m"


@pytest.mark.parametrize("name", ["tokenizer_smoke", "tokenizer_default"])
def test_tokenizer_recipes_load(name):
    cfg = load_config(TokenizerJob, CONFIGS / f"{name}.yaml")
    assert cfg.train.max_steps >= 1 and cfg.data.clip_len >= 1


def test_decoder_recipe_keeps_an_encoder_and_widens_only_the_decoder():
    cfg = load_config(TokenizerJob, CONFIGS / "decoder_default.yaml")
    assert not cfg.train_encoder and cfg.init_from
    assert set(cfg.overrides) == {"decoder_block_out_channels"}


def test_command_line_takes_a_recipe_and_overrides(capsys):
    recipe = str(CONFIGS / "smoke.yaml")
    cfg = parse_job_args(["--config", recipe, "train.max_steps=3"], WorldModelJob, "", None)
    assert cfg.train.max_steps == 3
    with pytest.raises(SystemExit):
        parse_job_args(["--config", recipe, "train.nope=3"], WorldModelJob, "", None)
    assert "unknown key" in capsys.readouterr().err
