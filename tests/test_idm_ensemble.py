"""training.idm_ensemble: trained IDMs put together as one directory that evaluation reads."""

import json

import pytest
import torch
from conftest import SMALL_IDM
from safetensors import safe_open

from gameworld.models.idm import IDMEnsemble, InverseDynamicsModel, load_idm
from training import idm_ensemble


@pytest.fixture
def members(tmp_path):
    paths = []
    for seed, flow in ((0, False), (1, True)):
        torch.manual_seed(seed)
        path = tmp_path / f"run{seed}" / "idm"
        InverseDynamicsModel(**SMALL_IDM, flow_terms=flow, mirror_average=True).save_pretrained(path)
        (path / idm_ensemble.IDM_REPORT).write_text(json.dumps({"steps": seed}))
        paths.append(path)
    return paths


def test_the_ensemble_keeps_each_member_its_weights_and_report(members, tmp_path, make_frames):
    out = tmp_path / "model" / "idm"
    assert idm_ensemble.main([*map(str, members), "--out", str(out), "--float16"]) == 0
    ensemble = load_idm(out)
    assert isinstance(ensemble, IDMEnsemble)
    assert [member.config.flow_terms for member in ensemble.members] == [False, True]
    for index, path in enumerate(members):
        member = out / f"member_{index}"
        assert json.loads((member / idm_ensemble.IDM_REPORT).read_text()) == {"steps": index}
        with safe_open(member / "diffusion_pytorch_model.safetensors", "pt") as handle:
            names = list(handle.keys())  # a safetensors handle is not iterable
            assert {str(handle.get_slice(name).get_dtype()) for name in names} == {"F16"}
        original = load_idm(path).state_dict()
        for name, value in ensemble.members[index].state_dict().items():
            torch.testing.assert_close(value, original[name].half().float())
    frames = make_frames(6, height=18, width=32)[None]
    assert len(ensemble.predict(frames)[0]) == 6


def test_one_member_or_an_ensemble_as_a_member_is_refused(members, tmp_path, capsys):
    with pytest.raises(SystemExit):
        idm_ensemble.main([str(members[0]), "--out", str(tmp_path / "one")])
    assert "two or more" in capsys.readouterr().err
    idm_ensemble.main([*map(str, members), "--out", str(tmp_path / "pair")])
    with pytest.raises(SystemExit):
        idm_ensemble.main([str(tmp_path / "pair"), str(members[0]), "--out", str(tmp_path / "nested")])
    assert "is an ensemble itself" in capsys.readouterr().err
    assert not (tmp_path / "one").exists() and not (tmp_path / "nested").exists()
