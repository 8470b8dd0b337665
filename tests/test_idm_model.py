"""IDM: labels, travel, mirroring, round trip through save/load, per-transition outputs, decoding, loss,
bad input."""

import numpy as np
import pytest
import torch
from conftest import SMALL_IDM

from gameworld.actions import Action, ActionSpace
from gameworld.metrics.controls import (
    DEAD_ZONE_DEG,
    ControlLabels,
    balanced_accuracy,
    camera_accuracy_by_margin,
    camera_class,
    class_recalls,
    group_accuracies,
    labels_from_actions,
    labels_from_encoded,
    travel_of_poses,
)
from gameworld.models.idm import (
    ENSEMBLE_FILE,
    HEADS,
    IDMEnsemble,
    InverseDynamicsModel,
    class_weights,
    decode_outputs,
    flow_terms,
    idm_loss,
    load_idm,
    mirror,
    read_windows,
)
from gameworld.voxel import VoxelWorld


def test_labels_from_actions_and_from_encoded_rows_agree():
    space = ActionSpace.minecraft()
    actions = [
        Action.null(),
        Action.of("forward", "back", "left"),
        Action.of("back", camera=(-3, 0.5)),
        Action.of("jump", "attack", camera=(2, -7)),
        Action.of("right", camera=(0.2, 4)),
    ]
    a, b = labels_from_actions(actions), labels_from_encoded(space.encode(actions), space)
    assert a.move.tolist() == [0, 0, 2, 0, 0]  # forward + back cancel
    assert a.strafe.tolist() == [0, 1, 0, 0, 2] and a.jump.tolist() == [0, 0, 0, 1, 0]
    assert a.camera.tolist() == [0, 0, 3, 7, 2]  # none, none, up, down-left, right (dead zone 1 degree)
    for name in ("move", "strafe", "jump", "attack", "camera"):
        assert np.array_equal(a.group(name), b.group(name))
    scores = group_accuracies(a, b)
    assert all(v["accuracy"] == 1.0 and v["frames"] == 4 for v in scores.values())
    assert camera_class(torch.tensor([-5.0]), torch.tensor([5.0])).tolist() == [5]  # up-right


def test_class_recalls_are_per_class_shares_and_their_mean_is_the_balanced_accuracy():
    target = np.array([0, 0, 0, 0, 2, 2, 1])
    predicted = np.array([0, 0, 0, 2, 2, 0, 1])
    recalls = class_recalls(predicted, target, ["still", "left", "right", "up"])
    assert recalls == {"still": {"recall": 0.75, "frames": 4}, "left": {"recall": 1.0, "frames": 1},
                       "right": {"recall": 0.5, "frames": 2}, "up": {"recall": None, "frames": 0}}
    assert balanced_accuracy(predicted, target) == pytest.approx((0.75 + 1.0 + 0.5) / 3)


def test_camera_accuracy_by_margin_bands_frames_by_the_turn_nearest_the_dead_zone_edge():
    degrees = np.array([[0, 0], [0, 1.1], [0, -1.4], [3, 0.6], [-5, 5], [0, 2.2]], np.float32)  # [T, 2]
    target = ControlLabels(*(np.zeros(6, np.int64),) * 4, camera_deg=degrees)
    guess = degrees.copy()
    guess[1, 1] = 0.9  # read inside the dead zone: still instead of right
    guess[4, 0] = 0.0  # up-left read as left
    predicted = ControlLabels(*(np.zeros(6, np.int64),) * 4, camera_deg=guess)
    bands = camera_accuracy_by_margin(predicted, target)
    # margins: 1.0, 0.1, 0.4, 0.4, 4.0, 1.0 (the nearer axis decides: 0.6 is 0.4 from the edge)
    assert bands == {"0-0.25": {"accuracy": 0.0, "frames": 1}, "0.25-0.5": {"accuracy": 1.0, "frames": 2},
                     "0.5-1": {"accuracy": None, "frames": 0}, ">=1": {"accuracy": 2 / 3, "frames": 3}}


def test_outputs_align_with_transitions_and_survive_save_and_load(tmp_path, make_frames):
    torch.manual_seed(0)
    idm = InverseDynamicsModel(**SMALL_IDM).eval()
    frames = make_frames(7, height=36, width=64)[None]  # resized to 32x18 inside
    out = idm(frames)
    assert (
        out["move"].shape == (1, 6, 3) and out["jump"].shape == (1, 6, 1) and out["camera"].shape == (1, 6, 2)
    )
    idm.save_pretrained(tmp_path / "idm")
    again = InverseDynamicsModel.from_pretrained(tmp_path / "idm").eval()
    for name, value in again(frames).items():  # same weights; kernels on new buffers may round differently
        torch.testing.assert_close(value, out[name], rtol=0, atol=1e-6)
    labels = idm.predict(frames)[0]
    assert len(labels) == 7 and labels.move[0] == 0 and labels.camera_deg[0].tolist() == [0.0, 0.0]
    assert idm.frame_features(frames).shape[:2] == (1, 7)


def test_decoding_reads_the_heads():
    out = {
        name: torch.zeros(1, 2, n)
        for name, n in dict(move=3, strafe=3, jump=1, attack=1, pitch=3, yaw=3, camera=2).items()
    }
    out["move"][0, 0, 1] = out["strafe"][0, 1, 2] = out["jump"][0, 1, 0] = 5.0
    out["pitch"][0, 0, 1] = out["yaw"][0, 0, 2] = 5.0
    out["camera"][0, 0] = torch.tensor([0.5, 0.3])  # degrees / 10; signs come from the direction heads
    labels = decode_outputs(out)[0]
    assert (
        labels.move.tolist() == [0, 1, 0]
        and labels.strafe.tolist() == [0, 0, 2]
        and labels.jump.tolist() == [0, 0, 1]
    )
    assert np.allclose(labels.camera_deg[1], [-5.0, 3.0]) and labels.camera[1] == 5


def test_direction_heads_decide_the_camera_class_when_the_regression_undershoots():
    out = {
        name: torch.zeros(1, 2, n)
        for name, n in dict(move=3, strafe=3, jump=1, attack=1, pitch=3, yaw=3, camera=2).items()
    }
    out["yaw"][0, 0, 1] = out["pitch"][0, 1, 2] = 5.0  # turn left, then look down
    out["camera"][0] = torch.tensor([[0.0, 0.02], [0.01, 0.0]])  # 0.2 and 0.1 deg: inside the dead zone
    labels = decode_outputs(out)[0]
    assert labels.camera.tolist() == [0, 1, 6]
    assert labels.camera_deg[1, 1] < -DEAD_ZONE_DEG and labels.camera_deg[2, 0] > DEAD_ZONE_DEG


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(make_frames):
    torch.manual_seed(0)
    idm = InverseDynamicsModel(**SMALL_IDM)
    frames = torch.from_numpy(make_frames(6, height=18, width=32))[None]
    actions = [Action.null()] + [Action.of("forward", camera=(0, 3))] * 5
    target = labels_from_actions(actions)
    labels = {k: torch.from_numpy(getattr(target, k)[1:])[None] for k in ("move", "strafe", "jump", "attack")}
    labels["camera_deg"] = torch.from_numpy(target.camera_deg[1:])[None]
    optimizer = torch.optim.Adam(idm.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss, _ = idm_loss(idm(frames), labels)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.3 * first


@pytest.mark.parametrize("shift", [(0.3, 0.0), (0.0, -0.45), (0.2, 0.25)])
def test_the_flow_terms_of_a_pair_give_its_shift_to_a_fraction_of_a_pixel(shift):
    u, v = shift  # pixels right, down
    y, x = torch.meshgrid(torch.arange(40.0), torch.arange(64.0), indexing="ij")

    def picture(dx: float, dy: float) -> torch.Tensor:  # a smooth pattern moved by (dx, dy)
        xs, ys = x - dx, y - dy
        return 0.5 * torch.sin(xs / 2.5 + 0.3 * ys / 3.0) + 0.4 * torch.cos(ys / 2.0)

    images = torch.stack([picture(0, 0), picture(u, v)])[None, :, None].expand(1, 2, 3, 40, 64)
    terms = flow_terms(images)[0, 0, :, 2:-2, 2:-2].sum((-1, -2)).double()  # inside the padded border
    xt, yt, xx, yy, xy = terms
    estimate = torch.linalg.solve(torch.tensor([[xx, xy], [xy, yy]]), -torch.stack([xt, yt]))
    assert estimate.tolist() == pytest.approx([u, v], abs=0.03)
    still = flow_terms(torch.stack([picture(0, 0)] * 2)[None, :, None].expand(1, 2, 3, 40, 64))
    assert still[:, :, :2].abs().max() == 0 and still[:, :, 2].sum() > 0  # no change, gradients remain


def test_an_idm_with_flow_terms_reads_clips_and_round_trips(tmp_path, make_frames):
    torch.manual_seed(0)
    idm = InverseDynamicsModel(**SMALL_IDM, flow_terms=True).eval()
    frames = make_frames(5, height=18, width=32)[None]
    out = idm(frames)
    idm.save_pretrained(tmp_path / "idm")
    again = InverseDynamicsModel.from_pretrained(tmp_path / "idm").eval()
    assert again.config.flow_terms and again.motion_encoder[0][0].in_channels == 11
    for name, value in again(frames).items():
        torch.testing.assert_close(value, out[name], rtol=0, atol=1e-6)


def test_an_ensemble_reads_from_the_mean_of_its_members_and_round_trips(tmp_path, make_frames):
    torch.manual_seed(0)
    members = [InverseDynamicsModel(**SMALL_IDM, mirror_average=True).eval(),
               InverseDynamicsModel(**SMALL_IDM).eval()]
    frames = make_frames(9, height=18, width=32)[None]
    ensemble = IDMEnsemble(members).eval()
    first, second = (member.read(frames) for member in members)
    mean = {name: (first[name] + second[name]) / 2 for name in first}
    expected = decode_outputs(mean)[0]
    read = ensemble.predict(frames)[0]
    assert np.array_equal(read.camera, expected.camera) and np.allclose(read.camera_deg, expected.camera_deg)
    alone = [member.predict(frames)[0] for member in members]
    assert any(not np.array_equal(read.camera, one.camera) for one in alone)  # not just one member's reading
    assert torch.equal(ensemble.frame_features(frames), members[0].frame_features(frames))

    ensemble.save_pretrained(tmp_path / "idm")
    again = load_idm(tmp_path / "idm").eval()
    assert isinstance(again, IDMEnsemble) and again.members[0].config.mirror_average
    assert np.allclose(again.predict(frames)[0].camera_deg, read.camera_deg, atol=1e-5)
    members[1].save_pretrained(tmp_path / "single")
    assert isinstance(load_idm(tmp_path / "single"), InverseDynamicsModel)


@pytest.mark.parametrize("length,window", [(5, 4), (9, 4), (10, 5), (49, 48), (100, 48), (407, 48), (64, 7)])
def test_read_windows_cover_the_clip_and_hold_each_transition_away_from_their_ends(length, window):
    starts, owners = read_windows(length, window)
    assert starts[0] == 0 and starts[-1] == length - window
    assert all(0 < b - a <= window // 2 for a, b in zip(starts, starts[1:], strict=False))
    assert owners.shape == (length - 1,) and set(owners.tolist()) == set(range(len(starts)))
    for transition, owner in enumerate(owners.tolist(), start=1):
        start = starts[owner]
        assert start + 1 <= transition <= start + window - 1  # the window holds it
        from_ends = min(transition - start - 1, start + window - 1 - transition)
        near_clip_end = min(transition - 1, length - 1 - transition) < window // 2
        assert near_clip_end or from_ends >= window // 4 - 1


def test_a_windowed_idm_reads_each_transition_as_its_window_alone_does(tmp_path, make_frames):
    torch.manual_seed(0)
    windowed = InverseDynamicsModel(**SMALL_IDM, mirror_average=True, read_window=8).eval()
    whole = InverseDynamicsModel(**SMALL_IDM, mirror_average=True).eval()
    whole.load_state_dict(windowed.state_dict())
    frames = make_frames(30, height=18, width=32)[None]
    out = windowed.read(frames)
    assert out["move"].shape == (1, 29, 3) and out["camera"].shape == (1, 29, 2)
    starts, owners = read_windows(30, 8)
    for index, start in enumerate(starts):
        alone = whole.read(frames[:, start:start + 8])
        for k in np.flatnonzero(owners == index):
            for name, value in out.items():
                torch.testing.assert_close(value[:, k], alone[name][:, k - start], rtol=0, atol=1e-6)
    # a clip no longer than the window is read whole
    short = frames[:, :8]
    for name, value in windowed.read(short).items():
        torch.testing.assert_close(value, whole.read(short)[name], rtol=0, atol=0)

    # a transition's reading depends on its window only: far frames changed leave it be, which the
    # whole clip's norms do not (their statistics span every frame)
    changed = frames.copy()
    changed[:, 20:] = make_frames(10, height=18, width=32, seed=1)
    k = 2  # transition 3, read from the first window, frames 0..7
    assert owners[k] == 0
    assert torch.equal(windowed.read(changed)["yaw"][:, k], out["yaw"][:, k])
    assert not torch.equal(whole.read(changed)["yaw"][:, k], whole.read(frames)["yaw"][:, k])

    windowed.save_pretrained(tmp_path / "idm")
    again = load_idm(tmp_path / "idm").eval()
    assert again.config.read_window == 8 and len(again.predict(frames)[0]) == 30


def test_a_bad_idm_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no IDM here"):
        load_idm(tmp_path)
    (tmp_path / ENSEMBLE_FILE).write_text('{"members": []}')
    with pytest.raises(ValueError, match="ensemble.json.*must name the member folders"):
        load_idm(tmp_path)
    (tmp_path / ENSEMBLE_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="ensemble.json: not a list of members"):
        load_idm(tmp_path)
    (tmp_path / ENSEMBLE_FILE).write_text('{"members": ["gone"]}')
    with pytest.raises(FileNotFoundError, match="gone: no IDM here"):
        load_idm(tmp_path)


def test_bad_input_is_named():
    idm = InverseDynamicsModel(**SMALL_IDM)
    with pytest.raises(ValueError, match=r"frames \[B, T, H, W, 3\]"):
        idm(np.zeros((2, 18, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="at least 2 frames"):
        idm(np.zeros((1, 1, 18, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="width, height >= 16"):
        InverseDynamicsModel(width=8, height=8)
    with pytest.raises(ValueError, match="read_window must be at least 4 frames"):
        InverseDynamicsModel(**SMALL_IDM, read_window=3)
    with pytest.raises(ValueError, match="window 8, length 8"):
        read_windows(8, 8)


def test_class_weights_lift_rare_classes_and_power_zero_is_plain_cross_entropy():
    move = torch.tensor([0] * 90 + [1] * 9 + [2] * 1)[None]  # [1, 100]
    camera = torch.zeros(1, 100, 2)
    camera[0, :20, 1] = 5.0  # yaw right on 20 transitions
    labels = {"move": move, "strafe": torch.zeros_like(move), "jump": (torch.arange(100) < 10)[None].long(),
              "attack": torch.zeros_like(move), "camera_deg": camera}
    full = class_weights(labels, power=1.0)
    counts = torch.tensor([90.0, 9.0, 1.0])
    torch.testing.assert_close(full["move"] * counts, torch.full((3,), 100 / 3))  # each class weighs the same
    assert abs((full["move"] * counts).sum().item() / 100 - 1) < 1e-6  # mean weight 1 over the labels
    torch.testing.assert_close(full["jump"], torch.tensor([9.0]))  # 10 pressed vs 90 released
    assert full["yaw"][2] > full["yaw"][0] and full["pitch"][0] == 1.0  # only "none" seen: unchanged
    plain = class_weights(labels, power=0.0)
    assert all(torch.allclose(w, torch.ones_like(w)) for w in plain.values())

    g = torch.Generator().manual_seed(1)
    out = {name: torch.randn(1, 100, n, generator=g) for name, n in HEADS.items()}
    torch.testing.assert_close(idm_loss(out, labels, plain)[0], idm_loss(out, labels)[0])
    weighted, terms = idm_loss(out, labels, full)
    expected = torch.nn.functional.cross_entropy(out["move"][0], move[0], weight=full["move"])
    torch.testing.assert_close(terms["move"], expected)


def test_travel_reads_the_keys_in_the_players_own_frame_whichever_way_it_faces():
    world = VoxelWorld(seed=3, biome="plains", width=32, height=18)
    world.reset()
    poses = [world.info()["pose"]]
    script = [Action.of(camera=(0.0, 37.0))] + [Action.of("forward")] * 6 + [Action.of("right")] * 6
    script += [Action.null()] * 4 + [Action.of("jump")]
    for action in script:
        poses.append(world.advance(action)["pose"])
    travel = travel_of_poses(poses)  # [T, 3] forward, right, up
    assert travel.shape == (len(script) + 1, 3) and travel[0].tolist() == [0.0, 0.0, 0.0]
    walking, sidestep = travel[2:8], travel[8:14]
    assert (walking[:, 0] > 0.05).all() and np.abs(walking[:, 1]).max() < 1e-6
    assert walking[-1, 0] > walking[0, 0]  # speeding up toward 0.22 blocks a tick
    assert (sidestep[1:, 1] > 0.05).all()
    coasting = travel[13:18, 1]  # the last sidestep, then no key: friction takes ~45% a tick
    assert (coasting[1:] < 0.6 * coasting[:-1]).all() and (coasting[1:] > 0.3 * coasting[:-1]).all()
    assert travel[-1, 2] > 0.3  # the jump's first tick lifts the player


def test_mirror_swaps_left_and_right_and_mirrors_back_to_the_start():
    labels = {"strafe": torch.tensor([[0, 1, 2]]), "move": torch.tensor([[1, 2, 0]]),
              "camera_deg": torch.tensor([[[1.0, -3.0], [0.0, 2.0], [-4.0, 0.0]]]),
              "travel": torch.tensor([[[0.2, 0.1, 0.0]] * 3])}
    mirrored = mirror(labels)
    assert mirrored["strafe"].tolist() == [[0, 2, 1]] and mirrored["move"].tolist() == [[1, 2, 0]]
    assert mirrored["camera_deg"].tolist() == [[[1.0, 3.0], [0.0, -2.0], [-4.0, 0.0]]]
    assert mirrored["travel"][0, 0].tolist() == pytest.approx([0.2, -0.1, 0.0])
    logits = {"strafe": torch.tensor([[[0.1, 0.2, 0.7]]]), "yaw": torch.tensor([[[0.5, 0.4, 0.1]]]),
              "jump": torch.tensor([[[2.0]]])}
    assert torch.equal(mirror(logits)["strafe"], logits["strafe"][..., [0, 2, 1]])
    assert torch.equal(mirror(logits)["yaw"], torch.tensor([[[0.5, 0.1, 0.4]]]))
    assert torch.equal(mirror(logits)["jump"], logits["jump"])
    for values in (labels, logits):
        assert all(torch.equal(mirror(mirror(values))[k], v) for k, v in values.items())


def test_a_mirror_averaged_idm_reads_a_mirrored_clip_as_the_mirrored_actions(make_frames):
    torch.manual_seed(0)
    frames = make_frames(9, height=18, width=32)[None]
    averaged = InverseDynamicsModel(**SMALL_IDM, mirror_average=True).eval()
    plain = InverseDynamicsModel(**SMALL_IDM).eval()
    plain.load_state_dict(averaged.state_dict())

    def readings(idm, clip):
        labels = idm.predict(clip)[0]
        return labels.strafe.tolist(), labels.camera_deg[:, 1].tolist(), labels.move.tolist()

    strafe, yaw, move = readings(averaged, frames)
    strafe_m, yaw_m, move_m = readings(averaged, frames[:, :, :, ::-1].copy())
    assert strafe_m == [(3 - s) % 3 for s in strafe] and move_m == move
    assert yaw_m == pytest.approx([-y for y in yaw], abs=1e-5)
    # a random network is not symmetric by itself: mirror averaging is what makes it so
    plain_yaw, plain_yaw_m = readings(plain, frames)[1], readings(plain, frames[:, :, :, ::-1].copy())[1]
    assert plain_yaw_m != pytest.approx([-y for y in plain_yaw], abs=1e-5)


def test_a_reverse_averaged_idm_reads_a_clip_played_backwards_as_the_opposite_turns(make_frames):
    torch.manual_seed(0)
    frames = make_frames(9, height=18, width=32)[None]
    backwards = frames[:, ::-1].copy()
    averaged = InverseDynamicsModel(**SMALL_IDM, reverse_average=True).eval()
    plain = InverseDynamicsModel(**SMALL_IDM).eval()
    plain.load_state_dict(averaged.state_dict())
    ahead, back = averaged.predict(frames)[0], averaged.predict(backwards)[0]
    assert np.abs(ahead.camera_deg).max() > DEAD_ZONE_DEG  # it reads turns, not only still frames
    # frame k of the backwards clip ends transition T-k of the clip, undone
    assert back.camera_deg[1:] == pytest.approx(-ahead.camera_deg[:0:-1], abs=1e-5)
    plain_ahead, plain_back = plain.predict(frames)[0], plain.predict(backwards)[0]
    assert plain_back.camera_deg[1:] != pytest.approx(-plain_ahead.camera_deg[:0:-1], abs=1e-5)
    for name in ("move", "strafe", "jump", "attack"):  # the keys are read from the clip alone
        assert np.array_equal(getattr(ahead, name), getattr(plain_ahead, name))


def test_the_travel_term_learns_from_clips_with_poses_and_leaves_the_others_out():
    out = {name: torch.zeros(2, 3, n) for name, n in HEADS.items()}
    labels = {name: torch.zeros(2, 3, dtype=torch.long) for name in ("move", "strafe", "jump", "attack")}
    labels["camera_deg"] = torch.zeros(2, 3, 2)
    _, without = idm_loss(out, labels)
    assert "travel" not in without
    labels["travel"] = torch.stack([torch.full((3, 3), float("nan")), torch.full((3, 3), 0.25)])
    total, terms = idm_loss(out, labels)
    assert torch.isfinite(total) and terms["travel"].item() == pytest.approx(1.0 - 0.05)  # smooth L1 of 1
    out["travel"][1] = 1.0  # 0.25 blocks / TRAVEL_SCALE
    assert idm_loss(out, labels)[1]["travel"].item() == 0.0
    assert "travel" not in idm_loss(out, labels, travel_weight=0.0)[1]
