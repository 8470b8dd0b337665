"""datasets/encode_latents.py: episodes -> latent shards (exact contents, sharded jobs, resume, bad input)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import import_script, one_torch_thread, write_smooth_episodes

from gameworld.actions import Action
from gameworld.data import EpisodeError, ShardSet, open_episode, read_shard, write_episode
from gameworld.models import FrameTokenizer

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(scope="module")
def encode_latents():
    return import_script(ROOT / "datasets" / "encode_latents.py")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("encode")
    write_smooth_episodes(root / "episodes", 3, seed=3, frames=10)
    with one_torch_thread():
        torch.manual_seed(0)
        FrameTokenizer.from_config("dc-f8c8").save_pretrained(root / "tokenizer")
    return root


def argv(inputs: Path, out: Path, *extra: str) -> list[str]:
    return ["--episodes", str(inputs / "episodes"), "--tokenizer", str(inputs / "tokenizer"),
            "--out", str(out), "--episodes-per-shard", "2", "--batch", "4", *extra]


def test_shards_hold_the_tokenizer_latents_actions_and_indices(encode_latents, inputs, tmp_path):
    assert encode_latents.main(argv(inputs, tmp_path)) == 0
    names = ["shard_000000.safetensors", "shard_000001.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == names
    tokenizer = FrameTokenizer.from_pretrained(inputs / "tokenizer")
    episodes = sorted((inputs / "episodes").glob("*.json"))
    first, second = (read_shard(tmp_path / name) for name in names)
    assert first.episode_index.tolist() == [0] * 10 + [1] * 10 and second.episode_index.tolist() == [2] * 10
    assert first.frame_index.tolist() == list(range(10)) * 2
    episode = open_episode(episodes[1])
    expected = tokenizer.encode(np.stack(list(episode.frames()))[None])[0]  # [T, C, h, w]
    assert torch.equal(first.latents[10:], expected.half())  # batches of 4 frames change nothing
    assert torch.equal(first.actions[10:], episode.space.encode(episode.actions))
    assert first.meta["width"] == 64 and first.meta["height"] == 32 and first.meta["fps"] == 20
    assert first.meta["action_space"] == episode.space.to_dict()
    assert first.meta["episodes"] == {"0": str(episodes[0]), "1": str(episodes[1])}
    assert ShardSet(tmp_path).runs() == [(0, 10), (10, 20), (20, 30)]


def test_sharded_jobs_split_the_work_and_a_rerun_resumes(encode_latents, inputs, tmp_path, capsys):
    assert encode_latents.main(argv(inputs, tmp_path / "a", "--shard", "0/2")) == 0
    assert encode_latents.main(argv(inputs, tmp_path / "b", "--shard", "1/2")) == 0
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["shard_000000.safetensors"]
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["shard_000001.safetensors"]
    written = (tmp_path / "a" / "shard_000000.safetensors").stat().st_mtime_ns
    capsys.readouterr()
    assert encode_latents.main(argv(inputs, tmp_path / "a", "--shard", "0/2")) == 0
    assert "1 done already" in capsys.readouterr().err
    assert (tmp_path / "a" / "shard_000000.safetensors").stat().st_mtime_ns == written


def test_shards_of_another_tokenizer_are_encoded_again_and_never_mixed(
    encode_latents, inputs, tmp_path, capsys
):
    with one_torch_thread():
        torch.manual_seed(1)
        FrameTokenizer.from_config("dc-f8c8").save_pretrained(tmp_path / "retrained")
    first = FrameTokenizer.from_pretrained(inputs / "tokenizer").fingerprint()
    second = FrameTokenizer.from_pretrained(tmp_path / "retrained").fingerprint()
    assert first != second
    out = tmp_path / "latents"
    assert encode_latents.main(argv(inputs, out)) == 0
    assert read_shard(out / "shard_000000.safetensors").meta["tokenizer_fingerprint"] == first
    other = [*argv(inputs, out)[:2], "--tokenizer", str(tmp_path / "retrained"), *argv(inputs, out)[4:]]
    assert encode_latents.main([*other, "--shard", "0/2"]) == 0
    assert "1 made by another tokenizer" in capsys.readouterr().err
    with pytest.raises(EpisodeError, match="shard_000001.*another tokenizer"):
        ShardSet(out)
    assert encode_latents.main(other) == 0
    assert "1 done already, 1 made by another tokenizer" in capsys.readouterr().err
    assert {read_shard(p).meta["tokenizer_fingerprint"] for p in out.iterdir()} == {second}
    assert len(ShardSet(out)) == 30


def test_bad_input_is_named(encode_latents, inputs, tmp_path, capsys):
    odd = tmp_path / "odd"
    frames = np.zeros((3, 36, 64, 3), np.uint8)  # 36 rows: not a multiple of the tokenizer's 8
    write_episode(odd / "ep0", frames, [Action.null()] * 3, fps=20)
    args = ["--tokenizer", str(inputs / "tokenizer"), "--out", str(tmp_path / "out")]
    assert encode_latents.main(["--episodes", str(odd), *args]) == 2
    error = capsys.readouterr().err
    assert "ep0" in error and "divisible" in error
    (tmp_path / "empty").mkdir()
    assert encode_latents.main(["--episodes", str(tmp_path / "empty"), *args]) == 2
    assert "no complete episodes" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        encode_latents.main(["--episodes", str(odd), *args, "--shard", "2/2"])
