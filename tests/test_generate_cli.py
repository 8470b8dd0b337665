"""python -m app.generate: action scripts, start scenes, the written episode, clear errors."""

import json

import numpy as np
import pytest
from PIL import Image

from app.generate import main, parse_action_line, parse_start, read_action_script
from gameworld.actions import Action, ActionSpace
from gameworld.data import open_episode
from gameworld.engine import WorldEngine

SPACE = ActionSpace.minecraft()


def test_script_lines_in_every_form():
    native = '{"keys": ["forward"], "camera": [1.5, -2]}'
    assert parse_action_line(native) == Action.of("forward", camera=(1.5, -2))
    assert parse_action_line('["forward", "jump"]') == Action.of("forward", "jump")
    assert parse_action_line("forward, jump") == Action.of("forward", "jump")
    assert parse_action_line("forward jump") == Action.of("forward", "jump")
    assert parse_action_line("null") == Action.null() == parse_action_line("-")


def test_script_files_skip_comments_and_name_the_bad_line(tmp_path):
    script = tmp_path / "s.txt"
    script.write_text("# walk\nforward\n\n[\"jump\"]\nforward back\n")
    assert read_action_script(script, SPACE) == [Action.of("forward"), Action.of("jump"), Action.null()]
    script.write_text("forward\nforwrd\n")
    with pytest.raises(ValueError, match=r"s.txt, line 2: unknown key name\(s\) \['forwrd'\]"):
        read_action_script(script, SPACE)
    script.write_text('forward\n{"keys": "forward"}\n')
    with pytest.raises(ValueError, match="s.txt, line 2: a native line needs"):
        read_action_script(script, SPACE)
    script.write_text("{not json\n")
    with pytest.raises(ValueError, match="s.txt, line 1: Expecting"):
        read_action_script(script, SPACE)
    script.write_text("# nothing\n")
    with pytest.raises(ValueError, match="no actions"):
        read_action_script(script, SPACE)
    with pytest.raises(FileNotFoundError, match="missing.jsonl: no such action script"):
        read_action_script(tmp_path / "missing.jsonl", SPACE)


def test_start_scenes(tmp_path):
    assert parse_start("voxel") == {"biome": "plains", "seed": 0}
    assert parse_start("voxel:forest") == {"biome": "forest", "seed": 0}
    assert parse_start("voxel:desert:7") == {"biome": "desert", "seed": 7}
    with pytest.raises(ValueError, match="unknown biome 'moon'"):
        parse_start("voxel:moon:1")
    with pytest.raises(ValueError, match="the seed must be an integer"):
        parse_start("voxel:forest:x")
    with pytest.raises(FileNotFoundError, match="no such file"):
        parse_start(str(tmp_path / "nope.png"))
    image = np.zeros((10, 20, 3), dtype=np.uint8)
    image[:, :10] = 200
    Image.fromarray(image).save(tmp_path / "a.png")
    assert np.array_equal(parse_start(str(tmp_path / "a.png"))["frames"], image)
    (tmp_path / "b.png").write_text("not an image")
    with pytest.raises(ValueError, match="b.png: not an image Pillow can read"):
        parse_start(str(tmp_path / "b.png"))


def test_generates_an_episode_equal_to_the_engine_rollout(tiny_model_dir, tmp_path, capsys):
    script = tmp_path / "walk.jsonl"
    actions = [Action.of("forward")] * 3 + [Action.of("left", camera=(0, 5))]
    script.write_text("".join(json.dumps(a.to_dict()) + "\n" for a in actions))
    out = tmp_path / "out" / "walk.mp4"
    argv = ["--model", str(tiny_model_dir), "--actions", str(script), "--start", "voxel:forest:3",
            "--out", str(out), "--steps", "1", "--speculative", "2", "--temperature", "0.9",
            "--device", "cpu", "--lossless"]
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().err
    episode = open_episode(out)
    assert episode.actions == [Action.null(), *actions]
    assert episode.meta["start"] == "voxel:forest:3" and episode.meta["settings"]["speculative"] == 2
    assert episode.meta["settings"]["temperature"] == 0.9
    settings = {"steps": 1, "speculative": 2, "temperature": 0.9}
    engine = WorldEngine.from_pretrained(tiny_model_dir, device="cpu", **settings)
    expected = np.concatenate([engine.reset(seed=3, biome="forest")[None], engine.rollout(actions)])
    assert np.array_equal(np.stack(list(episode.frames())), expected)


def test_bad_input_exits_with_a_message_not_a_traceback(tiny_model_dir, tmp_path, capsys):
    script = tmp_path / "s.txt"
    script.write_text("fly\n")
    argv = ["--model", str(tiny_model_dir), "--actions", str(script), "--out", str(tmp_path / "o.mp4")]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "s.txt, line 1: unknown key name(s) ['fly']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*argv[:1], str(tmp_path / "no-model"), *argv[2:]])
    assert "not a model directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*argv, "--temperature", "-0.5"])
    assert "temperature must be >= 0" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()
