import json

import pytest

from gameworld.actions import ActionSpace, CameraEncoding
from gameworld.modeldir import (
    CONFIG_NAME,
    GameWorldConfig,
    SamplerDefaults,
    read_config,
    resolve_model_dir,
    write_config,
)


def test_config_round_trip(tmp_path):
    camera = CameraEncoding(max_deg=90.0, n_bins=21, mu=11.49)
    space = ActionSpace(("left", "right", "fire"), camera, (("left", "right"),), "arcade")
    config = GameWorldConfig(
        width=192, height=112, fps=15, context_frames=8, action_space=space.to_dict(),
        sampler=SamplerDefaults(steps=2, sampler="heun", shift=3.0, context_noise=0.1), distilled=True,
    )
    write_config(tmp_path, config)
    loaded = read_config(tmp_path)
    assert loaded == config
    assert loaded.space == space
    assert [p.name for p in tmp_path.iterdir()] == [CONFIG_NAME]  # no temporary file left behind


def test_unknown_field_is_named(tmp_path):
    (tmp_path / CONFIG_NAME).write_text(json.dumps({"width": 64, "height": 36, "frame_rate": 20}))
    with pytest.raises(ValueError, match=r"gameworld\.json.*frame_rate"):
        read_config(tmp_path)


def test_bad_json_and_bad_action_space_are_named(tmp_path):
    (tmp_path / CONFIG_NAME).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_config(tmp_path)
    bad_space = {"width": 64, "height": 36, "action_space": {"name": "x"}}
    (tmp_path / CONFIG_NAME).write_text(json.dumps(bad_space))
    with pytest.raises(ValueError, match=str(tmp_path)):
        read_config(tmp_path)


def test_missing_model_dir_lists_shipped_models(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a model directory"):
        resolve_model_dir(tmp_path / "nowhere")
