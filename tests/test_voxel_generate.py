"""datasets/generate.py: native episodes spread over biomes and seeds, exact replays, resumable, sharded."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gameworld.data import episode_complete, open_episode
from gameworld.voxel import VoxelWorld
from gameworld.voxel.episodes import plan_scripted, replay
from gameworld.voxel.players import ScriptedPlayer

ROOT = Path(__file__).resolve().parents[1]


def load_generate():
    spec = importlib.util.spec_from_file_location("voxel_generate", ROOT / "datasets" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generate():
    return load_generate()


def args(out: Path, *extra: str) -> list[str]:
    return ["--out", str(out), "--frames", "10", "--size", "32x24", "--lossless", *extra]


def test_episodes_replay_exactly_and_carry_labels(generate, tmp_path):
    assert generate.main(args(tmp_path, "--episodes", "3", "--seed", "7")) == 0
    stems = sorted(p.with_suffix("") for p in tmp_path.glob("*.json"))
    assert [s.name for s in stems] == ["voxel_000000_plains", "voxel_000001_forest", "voxel_000002_desert"]
    for i, stem in enumerate(stems):
        ep = open_episode(stem)
        assert ep.meta["source"] == "voxel" and ep.meta["seed"] == 7 + i and ep.fps == 20
        assert len(ep.actions) == 10 and ep.actions[0].is_null
        world = VoxelWorld(seed=ep.meta["seed"], biome=ep.meta["biome"], width=32, height=24)
        expected = list(replay(world, ep.actions))
        frames = list(ep.frames())
        assert len(frames) == 10 and all(np.array_equal(a, b) for a, b in zip(frames, expected, strict=True))
        assert [e["pose"] for e in ep.extras][-1] == world.pose()


def test_generation_resumes_and_never_counts_half_written_episodes(generate, tmp_path):
    generate.main(args(tmp_path, "--episodes", "3"))
    stems = {p.name: p.with_suffix("") for p in tmp_path.glob("*.json")}
    mtimes = {name: (tmp_path / name).with_suffix(".mp4").stat().st_mtime_ns for name in stems}
    half_written = stems["voxel_000001_forest.json"]
    half_written.with_suffix(".json").unlink()  # as if the run stopped before the episode was finished
    assert not episode_complete(half_written)
    generate.main(args(tmp_path, "--episodes", "4"))
    assert all(episode_complete(tmp_path / f"voxel_{i:06d}_{b}") for i, b in enumerate(
        ("plains", "forest", "desert", "beach")))
    for name in ("voxel_000000_plains.json", "voxel_000002_desert.json"):
        assert (tmp_path / name).with_suffix(".mp4").stat().st_mtime_ns == mtimes[name]  # skipped


def test_an_episode_written_with_other_settings_is_written_again(generate, tmp_path):
    generate.main(args(tmp_path, "--episodes", "2"))
    longer = ["--out", str(tmp_path), "--frames", "12", "--size", "32x24", "--lossless", "--episodes", "1"]
    generate.main(longer)
    assert len(open_episode(tmp_path / "voxel_000000_plains.mp4")) == 12
    assert len(open_episode(tmp_path / "voxel_000001_forest.mp4")) == 10  # not asked for: left alone
    generate.main(args(tmp_path, "--episodes", "1", "--seed", "5"))
    ep = open_episode(tmp_path / "voxel_000000_plains.mp4")
    assert len(ep) == 10 and ep.meta["seed"] == 5


def test_the_player_preset_is_recorded_and_a_change_of_preset_writes_again(generate, tmp_path):
    generate.main(args(tmp_path, "--episodes", "1", "--frames", "40"))
    default = open_episode(tmp_path / "voxel_000000_plains.mp4")
    assert default.meta["player_preset"] == "default"
    generate.main(args(tmp_path, "--episodes", "1", "--frames", "40", "--player", "controls"))
    controls = open_episode(tmp_path / "voxel_000000_plains.mp4")
    assert controls.meta["player_preset"] == "controls" and controls.actions != default.actions


def test_shards_split_the_episodes_and_workers_run_in_parallel(tmp_path):
    """Run as documented, by path in a fresh process (worker processes re-import the script)."""
    argv = args(tmp_path, "--episodes", "5", "--shard", "1/2", "--workers", "2", "--biomes", "icy,river")
    script = ROOT / "datasets" / "generate.py"
    done = subprocess.run([sys.executable, str(script), *argv], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    names = sorted(p.stem for p in tmp_path.glob("*.json"))
    assert names == ["voxel_000001_river", "voxel_000003_river"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--episodes", "2", "--size", "33x24"], "even sides"),
        (["--episodes", "2", "--shard", "2/2"], "shard"),
        (["--episodes", "2", "--biomes", "plains,moon"], "moon"),
        (["--episodes", "0"], "at least 1"),
    ],
)
def test_bad_arguments_are_explained(generate, tmp_path, capsys, extra, message):
    argv = ["--out", str(tmp_path), "--frames", "4", *extra]
    with pytest.raises(SystemExit):
        generate.main(argv)
    assert message in capsys.readouterr().err


def test_plan_and_replay_agree_and_check_each_pose():
    world = VoxelWorld(seed=4, biome="hills", width=24, height=16)
    actions, extras = plan_scripted(world, ScriptedPlayer(4), 30)
    poses = [e["pose"] for e in extras]
    assert len(list(replay(world, actions, poses))) == 30
    poses[20] = dict(poses[20], x=poses[20]["x"] + 1.0)
    with pytest.raises(RuntimeError, match="diverged from the plan at frame 20"):
        list(replay(world, actions, poses))
    with pytest.raises(ValueError, match="at least one frame"):
        plan_scripted(world, ScriptedPlayer(4), 0)
