"""The training jobs' shared command line: exit codes, and unusable input as one line, not a traceback."""

from pathlib import Path

import pytest

from training import distill, finetune_starts, train, train_idm, train_tokenizer
from training.checkpoint import CheckpointError
from training.job import run_job
from training.train import WorldModelJob


def run_with(outcome):
    """A job whose run returns `outcome`, or raises it if it is an exception."""

    def run(cfg, env):
        assert isinstance(cfg, WorldModelJob) and cfg.train.max_steps == 3  # the override reached it
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return run_job("train", ["train.max_steps=3"], WorldModelJob, run, "a job", None)


def test_the_exit_code_says_whether_the_job_wrote_its_result():
    assert run_with(Path("runs/model")) == 0
    assert run_with(None) == 1


@pytest.mark.parametrize(
    "error",
    [FileNotFoundError("data/latents: no *.safetensors latent shards"),
     ValueError("data/latents/shard_000.safetensors: 3 frames, the clips need 8"),
     CheckpointError("runs/world/checkpoints/step_000100: model.safetensors is truncated")],
)
def test_unusable_input_is_one_line_naming_the_job(error, capsys):
    assert run_with(error) == 2
    err = capsys.readouterr().err
    assert err == f"train: {error}\n"


def test_a_bug_is_not_hidden_behind_a_one_line_message():
    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_with(RuntimeError("shape mismatch"))


def test_a_recipe_that_does_not_parse_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        run_job("train", ["train.no_such_field=1"], WorldModelJob, lambda cfg, env: None, "a job", None)
    assert stop.value.code == 2
    assert "no_such_field" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("job", "args"),
    [
        (train, ["data.shards={missing}", "tokenizer={missing}"]),
        (distill, ["data.shards={missing}", "teacher={missing}"]),
        (train_tokenizer, ["data.episodes={missing}"]),
        (train_idm, ["data.episodes={missing}"]),
        (finetune_starts, ["data.shards={missing}", "data.starts={missing}", "model={missing}"]),
    ],
)
def test_every_job_names_missing_input_without_a_traceback(job, args, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    argv = [arg.format(missing=missing) for arg in args] + [f"train.out_dir={tmp_path / 'run'}"]
    assert job.main(argv) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "Traceback" not in err
    assert err.splitlines()[-1].startswith(f"{job.__name__.rsplit('.', 1)[-1]}: ")
