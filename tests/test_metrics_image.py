"""Image metrics on inputs whose answers are known: identical, shifted, noise, flat, blurred; pooled PSNR."""

import numpy as np
import pytest

from gameworld.actions import Action
from gameworld.metrics.evaluate import RowAccumulator, summarise
from gameworld.metrics.image import (
    MAX_PSNR,
    feature_cosine,
    mean_colour,
    mse,
    psnr,
    psnr_of_mse,
    sharpness,
    ssim,
)
from gameworld.metrics.protocol import ScoreClip


def mse_of(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((a.astype(np.float64) - b) ** 2).mean(axis=(1, 2, 3))


def test_identical_frames_score_perfectly(make_frames):
    frames = make_frames(3)
    assert np.all(psnr(frames, frames) == MAX_PSNR)
    assert np.allclose(ssim(frames, frames), 1.0)


def test_psnr_matches_its_formula_for_a_constant_offset(make_frames):
    frames = make_frames(2)
    shifted = np.clip(frames.astype(np.int16) + 10, 0, 255).astype(np.uint8)
    errors = mse_of(shifted, frames)
    expected = 10 * np.log10(255**2 / errors)
    assert np.allclose(mse(shifted, frames), errors) and np.allclose(psnr(shifted, frames), expected)
    assert np.allclose(psnr_of_mse(errors), expected) and psnr_of_mse(0.0) == MAX_PSNR


def test_a_row_pools_squared_errors_so_a_perfect_clip_does_not_decide_its_psnr(make_frames):
    truth = make_frames(3)
    off = np.clip(truth.astype(np.int16) + 20, 0, 255).astype(np.uint8)
    clips = [ScoreClip(name, "plains", 0, 0, (Action.null(),) * 3) for name in ("empty", "forward")]
    row = RowAccumulator(clips=clips, mse=[mse(truth, truth), mse(off, truth)], ssim=[np.ones(3), np.ones(3)])
    summary = summarise(row, None)
    half = 10 * np.log10(255**2 / (mse_of(off, truth)[1] / 2))  # the perfect clip halves the mean error
    assert np.isclose(summary["psnr"]["1"], half)
    assert summary["psnr"]["1"] < 0.5 * (MAX_PSNR + psnr(off, truth)[1])  # what a mean of dB would say
    assert summary["clip_psnr"]["plains_0_empty"]["1"] == MAX_PSNR
    assert np.isclose(summary["clip_psnr"]["plains_0_forward"]["1"], psnr(off, truth)[1])


def test_shifted_and_noisy_frames_rank_below_close_ones(make_frames):
    frames = make_frames(4, height=40, width=64)
    rolled = np.roll(frames, 6, axis=2)
    noise = np.random.default_rng(0).integers(0, 256, frames.shape, dtype=np.uint8)
    close, far, random = ssim(frames[1], frames[0]), ssim(rolled, frames), ssim(noise, frames)
    assert 0.5 < close < 1.0
    assert np.all(far < 1.0) and np.all(random < 0.1) and np.all(random < far)
    assert np.all(psnr(noise, frames) < psnr(rolled, frames))


def test_per_frame_values_keep_the_leading_shape(make_frames):
    frames = make_frames(6).reshape(2, 3, 36, 64, 3)
    assert psnr(frames, frames).shape == (2, 3) and ssim(frames, frames).shape == (2, 3)
    assert sharpness(frames).shape == (2, 3) and mean_colour(frames).shape == (2, 3, 3)


def test_sharpness_and_colour_see_collapse_to_grey_and_blur():
    sharp = np.random.default_rng(0).integers(0, 256, (1, 40, 64, 3)).astype(np.int32)
    blurred = (sharp[:, :-1, :-1] + sharp[:, 1:, 1:] + sharp[:, 1:, :-1] + sharp[:, :-1, 1:]) // 4
    grey = np.full_like(sharp, 128).astype(np.uint8)
    assert sharpness(grey)[0] == 0 and np.allclose(mean_colour(grey), 128)
    assert sharpness(blurred.astype(np.uint8))[0] < 0.5 * sharpness(sharp.astype(np.uint8))[0]


def test_feature_cosine_of_known_vectors():
    features = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    result = feature_cosine(features)
    assert np.allclose(result["consecutive"], [1.0, 0.0]) and np.allclose(result["to_first"], [1.0, 1.0, 0.0])


def test_bad_input_is_named(make_frames):
    with pytest.raises(ValueError, match="different shapes"):
        psnr(make_frames(2), make_frames(3))
    with pytest.raises(ValueError, match=r"frames \[\.\.\., H, W, 3\]"):
        ssim(np.zeros((4, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 8, 8, 3), np.uint8))
