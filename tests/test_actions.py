import json

import numpy as np
import pytest
import torch

from gameworld.actions import (
    MINECRAFT_EXCLUSIVE_PAIRS,
    MINECRAFT_KEYS,
    Action,
    ActionSpace,
    CameraEncoding,
    mu_law_bin,
    mu_law_center,
    wrap_degrees,
)

VPT = CameraEncoding(max_deg=10.0, n_bins=11, mu=10.0)
MINEWORLD = CameraEncoding(max_deg=90.0, n_bins=21, mu=11.49)


def camera_slices(space: ActionSpace):
    k, n = len(space.keys), space.camera.n_bins
    return slice(k, k + 2), slice(k + 2, k + 2 + n), slice(k + 2 + n, k + 2 + 2 * n)


# Hand-checked: bin = rint((sign(x) ln(1 + mu|x|) / ln(1 + mu) + 1) (n - 1) / 2), x = deg / max_deg.
# VPT: 1 deg -> (ln 2 / ln 11 + 1) * 5 = 6.45 -> 6; 0.2 deg -> 5.38 -> 5;
#      5 deg -> (ln 6 / ln 11 + 1) * 5 = 8.74 -> 9.
@pytest.mark.parametrize(
    ("degrees", "expected"),
    [(0.0, 5), (0.2, 5), (0.3, 6), (1.0, 6), (2.0, 7), (3.0, 8), (5.0, 9), (10.0, 10), (25.0, 10),
     (-1.0, 4), (-10.0, 0)],
)
def test_vpt_mu_law_bins(degrees, expected):
    assert mu_law_bin(np.array([degrees]), VPT.max_deg, VPT.n_bins, VPT.mu)[0] == expected


# MineWorld: 9 deg -> (ln 2.149 / ln 12.49 + 1) * 10 = 13.03 -> 13;
#           45 deg -> (ln 6.745 / ln 12.49 + 1) * 10 = 17.56 -> 18.
@pytest.mark.parametrize(
    ("degrees", "expected"),
    [(0.0, 10), (1.0, 10), (2.0, 11), (9.0, 13), (45.0, 18), (90.0, 20), (-9.0, 7), (200.0, 20)],
)
def test_mineworld_mu_law_bins(degrees, expected):
    assert mu_law_bin(np.array([degrees]), MINEWORLD.max_deg, MINEWORLD.n_bins, MINEWORLD.mu)[0] == expected


def test_bin_centers_invert_the_quantiser():
    # VPT bin 6 is companded value 0.2: (11 ** 0.2 - 1) / 10 * 10 degrees; bin 7: 11 ** 0.4 - 1.
    centers = mu_law_center(np.array([5, 6, 7, 10, 0]), VPT.max_deg, VPT.n_bins, VPT.mu)
    np.testing.assert_allclose(centers, [0.0, 11**0.2 - 1, 11**0.4 - 1, 10.0, -10.0], atol=1e-9)
    for camera in (VPT, MINEWORLD):
        bins = np.arange(camera.n_bins)
        middles = mu_law_center(bins, camera.max_deg, camera.n_bins, camera.mu)
        np.testing.assert_array_equal(mu_law_bin(middles, camera.max_deg, camera.n_bins, camera.mu), bins)


def test_wrap_degrees_takes_the_short_way_round():
    np.testing.assert_allclose(wrap_degrees(np.array([190.0, -190.0, 180.0, -180.0, 725.0, 0.0])),
                               [-170.0, 170.0, -180.0, -180.0, 5.0, 0.0])
    assert wrap_degrees(179.0 + 2.0) == -179.0  # a plain float too (the game's yaw)


def test_encode_layout_of_the_minecraft_space():
    space = ActionSpace.minecraft()
    assert space.dim == len(MINECRAFT_KEYS) + 2 + 2 * 11 == 46
    encoded = space.encode([Action.null(), Action.of("forward", "hotbar.3", camera=(-1.0, 5.0))])
    assert encoded.shape == (2, 46) and encoded.dtype == torch.float32
    value, pitch, yaw = camera_slices(space)
    assert encoded[0, : len(MINECRAFT_KEYS)].sum() == 0
    assert encoded[0, pitch].argmax() == 5 and encoded[0, yaw].argmax() == 5
    keys = {MINECRAFT_KEYS[i] for i in torch.nonzero(encoded[1, : len(MINECRAFT_KEYS)]).flatten().tolist()}
    assert keys == {"forward", "hotbar.3"}
    torch.testing.assert_close(encoded[1, value], torch.tensor([-0.1, 0.5]))
    assert encoded[1, pitch].argmax() == 4 and encoded[1, yaw].argmax() == 9
    assert encoded[1, pitch].sum() == 1 and encoded[1, yaw].sum() == 1


def test_continuous_camera_is_clipped_to_max_deg():
    space = ActionSpace.minecraft()
    value, _, yaw = camera_slices(space)
    encoded = space.encode([Action(camera=(30.0, -45.0))])
    torch.testing.assert_close(encoded[0, value], torch.tensor([1.0, -1.0]))
    assert encoded[0, yaw].argmax() == 0


def test_mineworld_parameters_are_parameters():
    space = ActionSpace.minecraft(camera=MINEWORLD)
    assert space.dim == 22 + 2 + 2 * 21
    _, pitch, yaw = camera_slices(space)
    encoded = space.encode([Action(camera=(9.0, 45.0))])
    assert encoded[0, pitch].argmax() == 13 and encoded[0, yaw].argmax() == 18


@pytest.mark.parametrize("pair", MINECRAFT_EXCLUSIVE_PAIRS)
def test_exclusive_pairs_cancel(pair):
    space = ActionSpace.minecraft()
    resolved = space.resolve(Action.of(*pair, "jump"))
    assert resolved.keys == {"jump"}
    encoded = space.encode([Action.of(*pair, "jump")])
    assert encoded[0, MINECRAFT_KEYS.index(pair[0])] == 0 and encoded[0, MINECRAFT_KEYS.index(pair[1])] == 0
    assert encoded[0, MINECRAFT_KEYS.index("jump")] == 1


def test_decode_reads_keys_and_bin_centers():
    space = ActionSpace.minecraft()
    actions = [Action.null(), Action.of("jump", "attack", camera=(2.0, -0.6))]
    decoded = space.decode(space.encode(actions))
    assert decoded[0] == Action.null()
    assert decoded[1].keys == {"jump", "attack"}
    np.testing.assert_allclose(decoded[1].camera, (11**0.4 - 1, -(11**0.2 - 1)))
    with pytest.raises(ValueError, match=r"\[T, 46\]"):
        space.decode(torch.zeros(3, 45))


def test_decode_without_bins_uses_the_continuous_camera():
    space = ActionSpace.minecraft()
    row = torch.zeros(1, space.dim)
    assert space.decode(row) == [Action.null()]
    row[0, len(MINECRAFT_KEYS) : len(MINECRAFT_KEYS) + 2] = torch.tensor([0.5, -0.25])
    np.testing.assert_allclose(space.decode(row)[0].camera, (5.0, -2.5))


def test_decode_with_exact_camera_reads_the_degrees_encoded_not_the_bins():
    space = ActionSpace.minecraft()
    actions = [Action.of("forward", camera=(2.0, -0.6)), Action.of(camera=(14.0, 0.0))]
    exact = space.decode(space.encode(actions), exact_camera=True)
    assert exact[0].keys == {"forward"}
    np.testing.assert_allclose(exact[0].camera, (2.0, -0.6), atol=1e-6)
    np.testing.assert_allclose(exact[1].camera, (10.0, 0.0))  # within +-max_deg
    binned = space.decode(space.encode(actions))
    assert abs(binned[0].camera[0] - 2.0) > 0.1


def test_unknown_keys_raise_a_clear_error():
    space = ActionSpace.minecraft()
    with pytest.raises(ValueError, match=r"unknown key name\(s\) \['fly'\].*minecraft"):
        space.encode([Action.of("forward", "fly")])
    with pytest.raises(TypeError, match="set of key names"):
        Action(keys="forward")


@pytest.mark.parametrize("camera", [(181.0, 0.0), (0.0, -500.0), (float("nan"), 0.0), (0.0, float("inf"))])
def test_out_of_range_camera_raises(camera):
    with pytest.raises(ValueError, match="outside"):
        Action(camera=camera)


def test_bad_camera_encodings_raise():
    for bad in ({"n_bins": 10}, {"n_bins": 1}, {"max_deg": 0.0}, {"mu": -1.0}):
        with pytest.raises(ValueError, match="invalid camera encoding"):
            CameraEncoding(**bad)


def test_action_dict_round_trip():
    action = Action.of("forward", "hotbar.9", camera=(0.1, -33.25))
    assert Action.from_dict(json.loads(json.dumps(action.to_dict()))) == action
    assert Action.from_dict({}) == Action.null()


def test_custom_space_with_camera_round_trips_through_json(tmp_path):
    space = ActionSpace(("left", "right", "fire", "boost"), MINEWORLD, (("left", "right"),), "arcade")
    space.save(tmp_path / "space.json")
    loaded = ActionSpace.load(tmp_path / "space.json")
    assert loaded == space
    actions = [Action.of("left", "fire", camera=(1.0, -2.0)), Action.of("left", "right", "boost")]
    torch.testing.assert_close(loaded.encode(actions), space.encode(actions))
    assert loaded.encode(actions)[1, :4].tolist() == [0, 0, 0, 1]
    with pytest.raises(ValueError, match="forward"):
        loaded.encode([Action.of("forward")])


def test_custom_space_without_camera_round_trips_and_refuses_turns(tmp_path):
    space = ActionSpace(("up", "down", "a", "b"), camera=None, name="pad")
    space.save(tmp_path / "pad.json")
    loaded = ActionSpace.load(tmp_path / "pad.json")
    assert loaded == space and loaded.camera is None and loaded.dim == 4
    assert loaded.encode([Action.of("up", "b")]).tolist() == [[1.0, 0.0, 0.0, 1.0]]
    assert loaded.decode(torch.tensor([[0.9, 0.1, 0.0, 0.7]])) == [Action.of("up", "b")]
    with pytest.raises(ValueError, match="has no camera"):
        loaded.encode([Action.of("up", camera=(0.0, 1.0))])


def test_bad_space_files_name_the_file(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"broken\.json"):
        ActionSpace.load(tmp_path / "broken.json")
    (tmp_path / "nokeys.json").write_text(json.dumps({"name": "x"}))
    with pytest.raises(ValueError, match=r"nokeys\.json.*not an action space"):
        ActionSpace.load(tmp_path / "nokeys.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"list\.json"):
        ActionSpace.load(tmp_path / "list.json")
    with pytest.raises(ValueError, match="lists a key twice"):
        ActionSpace(("a", "a"))
    with pytest.raises(ValueError, match="bad exclusive pair"):
        ActionSpace(("a", "b"), exclusive_pairs=(("a", "c"),))
