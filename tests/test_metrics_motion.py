"""Ego motion from pixels: known shifts and zooms, the voxel game's own moves, the response, and the
prior's warp that moves a frame by such a motion."""

import numpy as np
import pytest
from PIL import Image

from gameworld.actions import Action
from gameworld.hud import hotbar_box
from gameworld.metrics.controls import join_transitions, labels_from_actions
from gameworld.metrics.motion import (
    MAX_SHIFT_SHARE,
    apply_motion,
    ego_motion,
    motion_response,
    response_by_group,
)
from gameworld.voxel.world import VoxelWorld

H, W = 72, 128


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random colour texture, uint8 [height, width, 3]."""
    coarse = np.random.default_rng(seed).integers(0, 256, (height // 6, width // 6, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC))


def panned(dx: int, dy: int, frames: int = 5) -> np.ndarray:
    """Windows of a larger texture moved by (dx, dy) pixels a frame: the picture moves by (-dx, -dy)."""
    big = texture(H + 60, W + 60)
    corners = [(30 + t * dy, 30 + t * dx) for t in range(frames)]
    return np.stack([big[y : y + H, x : x + W] for y, x in corners])


def zoomed(scale: float, frames: int = 4) -> np.ndarray:
    """Each frame the centre of the last, enlarged by `scale` (PIL, not the metric's own warp)."""
    image = Image.fromarray(texture(H, W))
    out = [np.asarray(image)]
    for _ in range(frames - 1):
        w, h = W / scale, H / scale
        box = ((W - w) / 2, (H - h) / 2, (W + w) / 2, (H + h) / 2)
        image = image.resize((W, H), Image.BICUBIC, box=box)
        out.append(np.asarray(image))
    return np.stack(out)


def test_known_pans_and_zooms_are_recovered():
    motion = ego_motion(panned(dx=2, dy=-1))
    assert motion.shape == (4, 3) and motion.dtype == np.float32
    np.testing.assert_allclose(motion[:, 1] * W, -2.0, atol=0.15)  # pixels
    np.testing.assert_allclose(motion[:, 2] * H, 1.0, atol=0.15)
    np.testing.assert_allclose(motion[:, 0], 0.0, atol=2e-3)
    motion = ego_motion(zoomed(1.03))
    np.testing.assert_allclose(motion[:, 0], 0.03, atol=3e-3)
    np.testing.assert_allclose(motion[:, 1:], 0.0, atol=2e-3)
    assert np.abs(ego_motion(np.repeat(panned(0, 0, 1), 3, axis=0))).max() < 1e-6  # still


def test_fast_turns_are_found_far_beyond_a_gradient_steps_reach():
    motion = ego_motion(panned(dx=-9, dy=0, frames=3))  # a 5-degree turn moves this picture ~9 pixels
    np.testing.assert_allclose(motion[:, 1] * W, 9.0, atol=0.3)
    motion = ego_motion(panned(dx=17, dy=-6, frames=2))  # phase correlation finds it, gradients refine
    np.testing.assert_allclose(motion[0, 1:] * (W, H), (-17.0, 6.0), atol=0.3)


def test_no_move_beyond_a_quarter_of_the_frame_is_read():
    # A model's blurred desert once read as a 114-pixel turn the wrong way: phase correlation found
    # its best peak at a repeat of the picture. No frame-to-frame move is that large (10 degrees is 7%).
    frame = texture(H, W, seed=5)
    for shift in (W // 2 - 2, -(W // 2 - 2), round(0.4 * W)):
        read = ego_motion(np.stack([frame, np.roll(frame, shift, axis=1)]))[0, 1] * W
        assert abs(read) <= MAX_SHIFT_SHARE * W + 1
    assert ego_motion(np.stack([frame, np.roll(frame, 30, axis=1)]))[0, 1] * W == pytest.approx(30, abs=0.3)

def test_the_still_hotbar_does_not_hold_the_view_back():
    frames = panned(dx=3, dy=0)
    frames[:, -int(0.18 * H):] = 200  # a HUD band that never moves, as the hotbar
    np.testing.assert_allclose(ego_motion(frames)[:, 1] * W, -3.0, atol=0.2)



def test_a_moved_frame_reads_back_as_its_motion():
    frame = texture(H, W, seed=3)
    for motion in ([0.0, 3 / W, -2 / H], [0.02, 0.0, 0.0], [-0.02, -1.5 / W, 0.0]):
        read = ego_motion(np.stack([frame, apply_motion(frame, np.array(motion))]))[0]
        assert read[0] == pytest.approx(motion[0], abs=2e-3)  # zoom
        assert read[1:] * (W, H) == pytest.approx(np.array(motion[1:]) * (W, H), abs=0.2)  # pixels


def hotbar(frame: np.ndarray) -> tuple[slice, slice]:
    top, bottom, left, right = hotbar_box(frame.shape[1], frame.shape[0])
    return slice(top, bottom), slice(left, right)


def with_red_hotbar(frame: np.ndarray) -> np.ndarray:
    """`frame` without red (its red channel is its green) and its hotbar box painted pure red."""
    frame = frame.copy()
    frame[..., 0] = frame[..., 1]
    frame[hotbar(frame)] = (255, 0, 0)
    return frame


def reddest(frame: np.ndarray) -> int:
    return int((frame[..., 0].astype(int) - frame[..., 1:].max(-1)).max())


def test_a_pan_brings_round_what_leaves_the_other_side():
    frame = with_red_hotbar(texture(H, W))
    box = hotbar(frame)
    hidden = frame.copy()
    hidden[box] = frame[box[0].start - 1, box[1]]  # behind the hotbar: the row above it
    for pixels in (5, -37):  # the picture moves right, left
        moved = apply_motion(frame, np.array([0.0, pixels / W, 0.0]))
        expected = np.roll(hidden, pixels, axis=1)
        expected[box] = frame[box]  # the hotbar stays
        np.testing.assert_array_equal(moved, expected)


def test_a_roll_turns_the_picture_clockwise_about_the_frames_centre():
    frame = np.zeros((H, W, 3), np.uint8)
    cy, cx = H // 2, W // 2  # the centre of the frame is the corner between these pixels
    frame[cy - 1 : cy + 1, cx + 19 : cx + 21] = 255  # a dot 20 pixels right of the centre
    moved = apply_motion(frame, np.array([0.0, 0.0, 0.0, 90.0]))
    ys, xs = np.nonzero(moved[..., 0] > 127)
    assert (ys.mean() - (cy - 0.5), xs.mean() - (cx - 0.5)) == pytest.approx((20.0, 0.0), abs=0.5)  # below it
    picture = texture(H, W, seed=5)
    turned = apply_motion(picture, np.array([0.0, 0.0, 0.0, 7.0]))
    back = apply_motion(turned, np.array([0.0, 0.0, 0.0, -7.0]))
    middle = (slice(H // 4, H // 2), slice(W // 4, 3 * W // 4))
    assert np.abs(back[middle].astype(int) - picture[middle]).mean() < 4  # only resampling blur
    np.testing.assert_array_equal(apply_motion(picture, np.array([0.0, 0.0, 0.0, 0.0])), picture)


def test_rows_a_look_uncovers_repeat_the_frames_edge_and_the_hotbar_never_moves_in():
    frame = with_red_hotbar(texture(H, W))
    box = hotbar(frame)
    moved = apply_motion(frame, np.array([0.0, 0.0, -4 / H]))  # looking down: the picture moves up 4 rows
    np.testing.assert_array_equal(moved[: box[0].start - 4], frame[4 : box[0].start])
    np.testing.assert_array_equal(moved[-4:, :10], np.repeat(frame[-1:, :10], 4, axis=0))
    np.testing.assert_array_equal(moved[box], frame[box])
    moved = apply_motion(frame, np.array([0.0, 0.0, 3 / H]))  # looking up: the top row repeats
    np.testing.assert_array_equal(moved[:3], np.repeat(frame[:1], 3, axis=0))
    np.testing.assert_array_equal(moved[3:10], frame[:7])
    outside = np.ones((H, W), bool)
    outside[box] = False
    for motion in ([0.0, 0.0, -9 / H], [0.0, 0.0, 9 / H], [0.05, 3 / W, 0.0], [-0.05, 0.0, 0.0, 20.0]):
        moved = apply_motion(frame, np.array(motion))
        assert reddest(moved[outside]) < 64 and reddest(frame) == 255  # no hotbar pixel pulled into the view
        np.testing.assert_array_equal(moved[box], frame[box])


@pytest.mark.parametrize(
    ("keys", "camera", "component", "sign"),
    [
        (("forward",), (0.0, 0.0), 0, 1),
        (("back",), (0.0, 0.0), 0, -1),
        (("left",), (0.0, 0.0), 1, 1),  # stepping left: the scene slides right
        (("right",), (0.0, 0.0), 1, -1),
        ((), (0.0, -3.0), 1, 1),  # turning left, likewise
        ((), (-2.0, 0.0), 2, 1),  # looking up: the scene slides down
    ],
)
def test_the_voxel_games_moves_read_as_their_direction(keys, camera, component, sign):
    world = VoxelWorld(seed=100_000, biome="plains", width=256, height=144)
    action = Action(frozenset(keys), camera)
    frames = np.stack([world.reset(), *[world.step(action)[0] for _ in range(8)]])
    moved = np.median(ego_motion(frames)[2:, component])  # after the first ticks' speed-up
    assert sign * moved > 2e-3


def test_motion_response_is_the_slope_on_the_games_motion():
    reference = np.random.default_rng(0).normal(0, 0.01, (50, 3))
    assert motion_response(reference, reference) == pytest.approx({"zoom": 1.0, "pan_x": 1.0, "pan_y": 1.0})
    assert motion_response(np.zeros_like(reference), reference)["zoom"] == 0.0  # copy-last-frame
    assert motion_response(-reference, reference)["pan_x"] == pytest.approx(-1.0)
    assert motion_response(0.5 * reference, reference)["pan_y"] == pytest.approx(0.5)
    still = reference.copy()
    still[:, 0] = 1e-5  # the game hardly zooms: nothing to compare with
    assert motion_response(reference, still)["zoom"] is None
    with pytest.raises(ValueError, match=r"need two \[N, 3\]"):
        motion_response(reference[:, :2], reference[:, :2])


def test_each_group_is_read_over_the_frames_that_ask_for_it():
    walk, turn = Action(frozenset({"forward"}), (0.0, 0.0)), Action(frozenset(), (0.0, 5.0))
    asked = join_transitions([labels_from_actions([Action.null(), walk, walk, turn, turn])])
    reference = np.array([[0.01, 0, 0], [0.01, 0, 0], [0, -0.02, 0], [0, -0.02, 0]])
    model = np.array([[0.005, 0.3, 0], [0.005, 0.3, 0], [0.2, -0.02, 0], [0.2, -0.02, 0]])
    response = response_by_group(model, reference, asked)
    assert response["walk"] == pytest.approx(0.5)  # the pans of the walking frames do not count
    assert response["turn sideways"] == pytest.approx(1.0)
    assert response["strafe"] is None and response["turn up/down"] is None  # never asked for
    with pytest.raises(ValueError, match="labels of 4 transitions for 3"):
        response_by_group(model[:3], reference[:3], asked)


def test_bad_frames_are_clear_errors():
    with pytest.raises(ValueError, match=r"frames \[T >= 2, H, W, 3\], got \(1, 72, 128, 3\)"):
        ego_motion(panned(0, 0, 1))
    with pytest.raises(ValueError, match="got"):
        ego_motion(np.zeros((3, 72, 128), np.uint8))
