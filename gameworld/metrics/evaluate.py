"""Run the GameWorld Score protocol: generate every clip with `WorldEngine`, replay it in the voxel
game, and score the pair. `eval.score` is the command line around `evaluate`.

Rows of a report: the model, optionally a teacher model (the many-step model the student was
distilled from), `copy-last-frame` (the start frame held still: what a model that ignores the
actions scores), `moved-last-frame` when the model samples with its motion prior (the start frame
moved by the prior alone, frame after frame: what the world model adds beyond it), and `ground
truth` (the voxel game itself: the IDM's ceiling). A protocol started from user files has no ground
truth: its rows are scored on what needs none (the IDM's reading of the keys and of the asked turns,
consistency, the long rollouts' colour and sharpness, revisits).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from tqdm import tqdm

from gameworld.actions import Action, wrap_degrees
from gameworld.metrics.controls import (
    GROUPS,
    ControlLabels,
    accuracy,
    group_accuracies,
    join_transitions,
    labels_from_actions,
    turns_of_poses,
)
from gameworld.metrics.encoder import ImageFeatures
from gameworld.metrics.fvd import I3DFeatures, frechet_distance
from gameworld.metrics.image import feature_cosine, mean_colour, mse, psnr, psnr_of_mse, sharpness, ssim
from gameworld.metrics.lpips import LPIPS
from gameworld.metrics.motion import apply_motion, ego_motion, response_by_group
from gameworld.metrics.protocol import Protocol, ScoreClip, long_rollout_actions, revisit_actions
from gameworld.models.idm import IDMEnsemble, InverseDynamicsModel
from gameworld.motion_prior import MotionPrior, moves_view

HORIZONS = (1, 8, 16, 64)
LONG_MARKS = (1, 10, 100, 1000)
KEY_GROUPS_SCORED = ("move", "strafe", "jump", "attack")
PER_ACTION_SCORES = ("keyboard_accuracy", "mouse_accuracy", "mouse_accuracy_asked")
GROUND_TRUTH, COPY_LAST, MOVED_LAST = "ground truth", "copy-last-frame", "moved-last-frame"
# A generator: (context frames [K, H, W, 3], context actions, clip actions) -> clip frames [T, H, W, 3]
Generator = Callable[[np.ndarray, list[Action], list[Action]], np.ndarray]


@dataclass
class Scorers:
    """The networks metrics need; any may be missing (its metrics are then reported as not computed)."""

    idm: InverseDynamicsModel | IDMEnsemble | None = None
    lpips: LPIPS | None = None
    i3d: I3DFeatures | None = None
    encoder: ImageFeatures | None = None  # the consistency features (default: the IDM's frame encoder)

    @property
    def consistency_features(self) -> str | None:
        """Which network the feature cosines read: "encoder", "idm" or None (not computed)."""
        return "encoder" if self.encoder is not None else "idm" if self.idm is not None else None

    def frame_features(self, frames: np.ndarray) -> torch.Tensor | None:
        """Features [T, D] of uint8 frames [T, H, W, 3] for the feature cosines (None: no network)."""
        if self.encoder is not None:
            return self.encoder(frames)
        if self.idm is not None:
            with torch.no_grad():
                return self.idm.frame_features(frames[None])[0].cpu()
        return None


@dataclass
class RowAccumulator:
    """Per-clip results of one row, summarised by `summary()`."""

    clips: list[ScoreClip] = field(default_factory=list)
    mse: list[np.ndarray] = field(default_factory=list)  # [T] each
    ssim: list[np.ndarray] = field(default_factory=list)
    lpips: list[np.ndarray] = field(default_factory=list)
    predicted: list[ControlLabels] = field(default_factory=list)
    asked: list[ControlLabels] = field(default_factory=list)  # the clip's actions
    made: list[ControlLabels] = field(default_factory=list)  # its keys, and the turns the game made
    camera_error: list[np.ndarray] = field(default_factory=list)  # [T, 2] degrees
    cosine_consecutive: list[float] = field(default_factory=list)
    cosine_to_first: list[float] = field(default_factory=list)
    features: list[np.ndarray] = field(default_factory=list)  # I3D, one per clip
    motion: list[np.ndarray] = field(default_factory=list)  # [T-1, 3] zoom and pan per transition
    reference_motion: list[np.ndarray] = field(default_factory=list)  # the same of the truth
    seconds: float = 0.0
    frames: int = 0


def engine_generator(engine) -> Generator:
    """A `WorldEngine` as a generator: reset on the context, roll out the clip's actions."""

    def generate(context: np.ndarray, context_actions: list[Action], actions: list[Action]) -> np.ndarray:
        start = engine.reset(frames=context, actions=context_actions)
        return np.concatenate([start[None], engine.rollout(actions[1:])])

    return generate


def copy_last_generator(
    context: np.ndarray, context_actions: list[Action], actions: list[Action]
) -> np.ndarray:
    return np.repeat(context[-1:], len(actions), axis=0)


def moved_last_generator(prior: MotionPrior) -> Generator:
    """The last context frame moved by `prior`'s motion for each action in turn, no network (the
    pitch followed from the first context frame, taken as level, and a motion under half a pixel
    left out, as the engine does)."""

    def generate(context: np.ndarray, context_actions: list[Action], actions: list[Action]) -> np.ndarray:
        height, width = context.shape[1:3]
        frames, pitch = [context[-1]], prior.pitch_after(0.0, context_actions[1:])
        for action in actions[1:]:
            motion = prior.held(action, 1, pitch)[0]
            moves = moves_view(motion, width, height)
            frames.append(apply_motion(frames[-1], motion) if moves else frames[-1])
            pitch = prior.pitch_after(pitch, [action])
        return np.stack(frames)

    return generate


def camera_error(predicted: ControlLabels, made: ControlLabels) -> np.ndarray:
    """|camera read by the IDM - the turns the game made|, each summed over the clip, per frame:
    [T, 2] degrees (pitch, yaw), the yaw the short way round."""
    error = np.cumsum(predicted.camera_deg, axis=0) - np.cumsum(made.camera_deg, axis=0)  # [T, 2]
    error[:, 1] = wrap_degrees(error[:, 1])
    return np.abs(error)


def score_clip(
    row: RowAccumulator,
    frames: np.ndarray,
    truth: np.ndarray | None,
    clip: ScoreClip,
    poses: list[dict] | None,
    scorers: Scorers,
    truth_motion: np.ndarray | None = None,
) -> None:
    """Score one clip's frames against `truth`, its `truth_motion` (`ego_motion(truth)`) and the
    game's `poses` (all None for a user start)."""
    row.clips.append(clip)
    row.asked.append(labels_from_actions(list(clip.actions)))
    if truth is not None:
        row.mse.append(mse(frames, truth))
        row.ssim.append(ssim(frames, truth))
        if scorers.lpips is not None:
            row.lpips.append(scorers.lpips.frames(frames, truth))
    if truth_motion is not None:
        row.motion.append(truth_motion if frames is truth else ego_motion(frames))  # the truth's row: its own
        row.reference_motion.append(truth_motion)
    if scorers.idm is not None:
        with torch.no_grad():
            predicted = scorers.idm.predict(frames[None])[0]
        row.predicted.append(predicted)
        if poses is not None:
            made = replace(row.asked[-1], camera_deg=turns_of_poses(poses))
            row.made.append(made)
            row.camera_error.append(camera_error(predicted, made))
    features = scorers.frame_features(frames)
    if features is not None:
        cosine = feature_cosine(features)
        row.cosine_consecutive.append(float(cosine["consecutive"].mean()))
        row.cosine_to_first.append(float(cosine["to_first"].mean()))
    if scorers.i3d is not None:
        row.features.append(scorers.i3d(frames[None])[0])


def _controls(predicted: list[ControlLabels], made: list[ControlLabels], asked: list[ControlLabels]) -> dict:
    """Keys against those asked; the mouse against the turns the game made (`mouse_accuracy`) and,
    as GameWorld Score reads it, against the turns asked (`mouse_accuracy_asked`): they differ where
    the pitch stops at +-90 degrees, where a frame that keeps turning is wrong. Without the game's
    turns (`made` empty: user starts) the groups are read against the asked ones."""
    read = join_transitions(predicted)
    groups = group_accuracies(read, join_transitions(made or asked), skip_first=False)
    return {
        "keyboard_accuracy": float(np.mean([groups[g]["accuracy"] for g in KEY_GROUPS_SCORED])),
        "mouse_accuracy": groups["camera"]["accuracy"] if made else None,
        "mouse_accuracy_asked": accuracy(read.camera, join_transitions(asked).camera),
        "groups": groups,
    }


def summarise(row: RowAccumulator, reference_features: list[np.ndarray] | None) -> dict:
    """The numbers of one row (None where a metric was not computed).

    PSNR at frame h is that of the squared error pooled over the clips, not a mean of per-clip
    dB: a clip equal to the truth (copy-last-frame on a still scene) has an infinite PSNR, and a
    mean of dB would be decided by whatever finite value stands in for it. The PSNR of each clip
    is in `clip_psnr`.
    """
    curve = lambda values: np.mean(np.stack(values), axis=0) if values else None  # noqa: E731
    mse_curve, ssim_curve, lpips_curve = curve(row.mse), curve(row.ssim), curve(row.lpips)
    psnr_curve = None if mse_curve is None else psnr_of_mse(mse_curve)
    at = lambda c, h: None if c is None or h >= len(c) else float(c[h])  # noqa: E731
    mean = lambda c: None if c is None else float(c[1:].mean())  # noqa: E731
    listed = lambda c: None if c is None else c.tolist()  # noqa: E731
    out = {
        "clips": len(row.clips),
        "psnr": {str(h): at(psnr_curve, h) for h in HORIZONS},
        "ssim": {str(h): at(ssim_curve, h) for h in HORIZONS},
        "lpips": {str(h): at(lpips_curve, h) for h in HORIZONS},
        "psnr_mean": mean(psnr_curve),
        "ssim_mean": mean(ssim_curve),
        "curves": {"psnr": listed(psnr_curve), "ssim": listed(ssim_curve), "lpips": listed(lpips_curve)},
        "clip_psnr": {
            clip.key: {str(h): at(psnr_of_mse(errors), h) for h in HORIZONS}
            for clip, errors in zip(row.clips, row.mse, strict=True)
        }
        if row.mse
        else {},  # no ground truth
        "fvd": None,
        "keyboard_accuracy": None,
        "mouse_accuracy": None,
        "mouse_accuracy_asked": None,
        "groups": None,
        "per_action": None,
        "camera_error_deg": None,
        "cosine_consecutive": None,
        "cosine_to_first": None,
        "motion_response": None,
        "motion_per_action": None,
        "frames_per_second": row.frames / row.seconds if row.seconds > 0 else None,
    }
    if row.predicted:
        out.update(_controls(row.predicted, row.made, row.asked))
        per_action = {}
        for name, index in _clips_by_action(row).items():
            labels = (row.predicted, row.made, row.asked)  # `made` is empty for user starts
            result = _controls(*([each[i] for i in index] if each else [] for each in labels))
            per_action[name] = {k: result[k] for k in PER_ACTION_SCORES}
        out["per_action"] = per_action
        if row.camera_error:
            errors = np.concatenate([e[1:] for e in row.camera_error])
            out["camera_error_deg"] = {"pitch": float(errors[:, 0].mean()), "yaw": float(errors[:, 1].mean())}
    if row.motion:
        out["motion_response"] = _motion(row.motion, row.reference_motion, row.asked)
        per_clip = (row.motion, row.reference_motion, row.asked)
        out["motion_per_action"] = {
            name: _motion(*([each[i] for i in index] for each in per_clip))
            for name, index in _clips_by_action(row).items()
        }
    if row.cosine_consecutive:
        out["cosine_consecutive"] = float(np.mean(row.cosine_consecutive))
        out["cosine_to_first"] = float(np.mean(row.cosine_to_first))
    if row.features and reference_features and len(row.features) >= 2:
        out["fvd"] = frechet_distance(np.stack(row.features), np.stack(reference_features))
    return out


def _clips_by_action(row: RowAccumulator) -> dict[str, list[int]]:
    """The indices of the row's clips per action name, in the order the actions first come."""
    names = [clip.name for clip in row.clips]
    return {name: [i for i, n in enumerate(names) if n == name] for name in dict.fromkeys(names)}


def _motion(motion: list[np.ndarray], reference: list[np.ndarray], asked: list[ControlLabels]) -> dict:
    """`response_by_group` over the clips given."""
    return response_by_group(np.concatenate(motion), np.concatenate(reference), join_transitions(asked))


def run_clips(
    protocol: Protocol,
    generators: dict[str, Generator],
    scorers: Scorers,
    keep: int = 8,
    on_generated: Callable[[str, ScoreClip, np.ndarray], None] | None = None,
) -> tuple[dict, dict[str, list[np.ndarray]]]:
    """Score every clip for every generator (and the ground truth); also return the first `keep`
    clips of each row for the video grid. `on_generated(row, clip, frames)` sees every clip."""
    truth_row = (GROUND_TRUTH,) if protocol.has_ground_truth else ()
    rows = {name: RowAccumulator() for name in (*generators, *truth_row)}
    kept: dict[str, list[np.ndarray]] = {name: [] for name in rows}
    clips = protocol.clips()
    for clip in tqdm(clips, desc=f"{protocol.name} protocol", unit="clip"):
        if protocol.has_ground_truth:
            context, truth, context_actions, poses = protocol.ground_truth(clip)
            outputs, truth_motion = {GROUND_TRUTH: truth}, ego_motion(truth)
        else:
            (context, context_actions), truth, poses = protocol.user_start(clip.start), None, None
            outputs, truth_motion = {}, None
        for name, generate in generators.items():
            start = time.perf_counter()
            outputs[name] = generate(context, context_actions, list(clip.actions))
            rows[name].seconds += time.perf_counter() - start
            rows[name].frames += len(clip.actions) - 1
        for name, frames in outputs.items():
            score_clip(rows[name], frames, truth, clip, poses, scorers, truth_motion)
            if len(kept[name]) < keep:
                kept[name].append(frames)
            if on_generated is not None:
                on_generated(name, clip, frames)
    reference = rows[GROUND_TRUTH].features if protocol.has_ground_truth else None
    return {name: summarise(row, reference) for name, row in rows.items()}, kept


def _start(
    protocol: Protocol, start: int, actions: list[Action], what: str
) -> tuple[np.ndarray, list[Action], np.ndarray | None]:
    """(context [K, H, W, 3], its actions, the true frames of `actions` [T, H, W, 3]) from voxel start
    `start` in the plains, or (no truth) from user start `start` (counted round the user's files)."""
    if not protocol.has_ground_truth:
        context, context_actions = protocol.user_start(start % len(protocol.starts_from))
        return context, context_actions, None
    world, context, context_actions = protocol.start_world("plains", start)
    truth = [context[-1]] + [world.step(a)[0] for a in tqdm(actions[1:], desc=f"{what} truth", unit="frame")]
    return context, context_actions, np.stack(truth)


def _with_truth(generators: dict[str, Generator], truth: np.ndarray | None) -> dict[str, Generator | None]:
    """The generators, and the ground truth (None) as a row of its own where there is one."""
    return {**generators, GROUND_TRUTH: None} if truth is not None else dict(generators)


def run_long(protocol: Protocol, generators: dict[str, Generator]) -> dict:
    """1,000-frame idle and walking rollouts: mean colour, sharpness and PSNR to the truth over time."""
    results = {}
    for kind in ("idle", "walk"):
        actions = long_rollout_actions(kind, protocol.long_frames)
        context, context_actions, truth = _start(protocol, 0, actions, kind)
        results[kind] = {}
        for name, generate in _with_truth(generators, truth).items():
            frames = truth if generate is None else generate(context, context_actions, actions)
            colour, sharp = mean_colour(frames), sharpness(frames)
            close = None if truth is None else psnr(frames, truth)
            marks = sorted({min(m, len(frames) - 1) for m in LONG_MARKS})  # past the end: the last frame
            results[kind][name] = {
                "marks": marks,
                "mean_colour": [colour[m].tolist() for m in marks],
                "sharpness": [float(sharp[m]) for m in marks],
                "psnr": [None if close is None else float(close[m]) for m in marks],
                "curves": {
                    "brightness": colour.mean(1).tolist(),
                    "sharpness": sharp.tolist(),
                    "psnr": None if close is None else close.tolist(),
                },
            }
    return results


def run_revisit(protocol: Protocol, generators: dict[str, Generator]) -> dict:
    """PSNR between the frame before and after a 360-degree turn and a walk there and back."""
    results = {}
    for kind in ("turn", "walk"):
        actions, back = revisit_actions(kind)
        context, context_actions, truth = _start(protocol, 1, actions, f"revisit {kind}")
        results[kind] = {}
        for name, generate in _with_truth(generators, truth).items():
            frames = truth if generate is None else generate(context, context_actions, actions)
            results[kind][name] = float(psnr(frames[back], frames[0]))
    return results


def evaluate(
    protocol: Protocol,
    generators: dict[str, Generator],
    scorers: Scorers,
    clip_generators: dict[str, Generator] | None = None,
    on_generated: Callable[[str, ScoreClip, np.ndarray], None] | None = None,
) -> tuple[dict, dict]:
    """Everything: clips for `generators` and `clip_generators` (clips only, e.g. a slow teacher),
    long rollouts and revisits for `generators`. Returns (results, kept clips per row)."""
    start = time.perf_counter()
    rows, kept = run_clips(
        protocol, {**generators, **(clip_generators or {})}, scorers, on_generated=on_generated
    )
    results = {
        "protocol": protocol.to_dict(),
        "horizons": list(HORIZONS),
        "rows": rows,
        "long": run_long(protocol, generators),
        "revisit": run_revisit(protocol, generators),
        "computed": {
            "lpips": scorers.lpips is not None,
            "fvd": scorers.i3d is not None,
            "controls": scorers.idm is not None,
            "consistency_features": scorers.consistency_features,
        },
        "control_groups": list(GROUPS),
    }
    results["seconds"] = time.perf_counter() - start
    return results, kept


def finite_or_none(value):
    """JSON-safe numbers: NaN and infinities become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_or_none(v) for v in value]
    return value
