"""`InverseDynamicsModel`: which keys and camera turn made a clip of frames, frame by frame.

Evaluation scores a world model's controllability with it (GameWorld Score, MineWorld): run the
IDM on generated clips and compare its reading with the actions that were asked for; on ground
truth clips the same IDM gives the ceiling. Its frame encoder also gives the features of the
temporal-consistency metrics.

    frames uint8 [B, T, H, W, 3] --resize--> [B*T, 3, h, w] --frame encoder--> [B, T, C, h/8, w/8]
    pixel pairs [B, T-1, 6 (+5), h, w] --motion encoder--> [B, T-1, C, h/8, w/8]
    pairs (f[t-1], f[t], f[t] - f[t-1], motion) --pair encoder, flatten--> [B, T-1, D]
    temporal convolutions (both directions, dilated) --heads--> logits per transition t = 1..T-1

A transition t is the tick that turned frame t-1 into frame t: its action is `a[t]` (the
project's time convention), so the outputs line up with `actions[1:]`. The temporal layers see
about +-14 transitions, enough to tell a held jump key from a single hop, and a held key from the
player coasting after it (a key changes the velocity, which takes three frames to see). The motion
encoder sees both frames at full IDM resolution before any downsampling: a camera turn of a degree
moves the picture by a pixel or two, which the per-frame maps (1/8 resolution) alone blur away.
With the `flow_terms` option the motion encoder also gets each pair's Lucas-Kanade products: a
patch's sum of them gives its least-squares shift to a fraction of a pixel, where a convolution of
the two frames can find the gradients and the change but not multiply them.

Besides the labels it is scored on, the IDM regresses the player's travel in each transition
(forward, right, up, from the recorded poses where an episode has them): a dense target that teaches
the frame pairs ego-motion, from which the keys follow. A left-right mirror of a clip is a clip of
the mirrored actions (left and right swapped, yaw and sideways travel negated): training mirrors
clips at random, and with `mirror_average` the IDM reads a clip as the mean of its reading of the
clip and of the mirrored reading of its mirror. A clip played backwards shows the opposite turns:
with `reverse_average` the camera is read as the mean of the clip's reading and that of the clip
played backwards, undone (`reverse`). An `IDMEnsemble` reads a clip with several IDMs at once.

With `read_window`, a clip longer than that many frames is read in windows of it that overlap by
about half, each transition from the window whose middle it is nearest (`read_windows`). The
temporal layers' norms take their statistics over the whole clip they are given, so an IDM reads
best the lengths it was trained on (24-frame clips), not a whole episode at once; and a long
recording is read in memory bounded by the window.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from gameworld.atomic import write_text_atomic
from gameworld.metrics.controls import BINARY_KEYS, DEAD_ZONE_DEG, KEY_GROUPS, ControlLabels, axis_state

# head name -> number of logits; "pitch"/"yaw" are the 3 axis states of `gameworld.metrics.controls`.
HEADS: dict[str, int] = {**{name: 3 for name in KEY_GROUPS}, **{name: 1 for name in BINARY_KEYS},
                         "pitch": 3, "yaw": 3, "camera": 2, "travel": 3}
MIN_READ_WINDOW = 4  # the shortest window that holds every transition nearest its middle
CAMERA_SCALE_DEG = 10.0  # the camera head regresses degrees / this
TRAVEL_SCALE = 0.25  # the travel head regresses blocks / this (walking covers 0.22 blocks a tick)
# The heads a clip played backwards reads as well: those of the camera, whose turns undo themselves.
TIME_REVERSIBLE: tuple[str, ...] = ("pitch", "yaw", "camera")
ENSEMBLE_FILE = "ensemble.json"  # in an IDM directory: the member folders of an `IDMEnsemble`
IDM_REPORT = "held_out_accuracy.json"  # in an IDM directory: the training job's held-out accuracy
FLOW_TERMS_SCALE = 32.0  # brings the Lucas-Kanade products (about 0.01 on voxel frames) near 1
# What a left-right mirror does: the classes of these 3-way heads swap 1 and 2, and these
# regressions change the sign of their components.
MIRROR_SWAPPED: tuple[str, ...] = ("strafe", "yaw")
MIRROR_SIGNS: dict[str, tuple[float, ...]] = {"camera_deg": (1.0, -1.0), "camera": (1.0, -1.0),
                                              "travel": (1.0, -1.0, 1.0)}


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(8, cout), nn.SiLU())


class InverseDynamicsModel(ModelMixin, ConfigMixin):
    """Frames -> per-transition logits of key groups and camera directions, and camera degrees."""

    @register_to_config
    def __init__(
        self,
        width: int = 96,
        height: int = 54,
        frame_channels: tuple[int, ...] = (24, 32, 48),
        pair_channels: tuple[int, ...] = (64, 96),
        hidden_size: int = 256,
        temporal_layers: int = 3,
        kernel_size: int = 5,
        mirror_average: bool = False,
        flow_terms: bool = False,
        reverse_average: bool = False,
        read_window: int | None = None,
    ) -> None:
        super().__init__()
        if width < 16 or height < 16 or kernel_size % 2 == 0:
            raise ValueError(f"IDM needs width, height >= 16 and an odd kernel, got {width}x{height}, "
                             f"kernel {kernel_size}")
        if read_window is not None and read_window < MIN_READ_WINDOW:
            raise ValueError(f"IDM read_window must be at least {MIN_READ_WINDOW} frames (or null to read "
                             f"clips whole), got {read_window}")
        layers, cin = [], 3
        for cout in frame_channels:  # each halves the resolution
            layers.append(_conv(cin, cout, 2))
            cin = cout
        self.frame_encoder = nn.Sequential(*layers)
        motion, channels = [], 6 + 5 * flow_terms
        for cout in frame_channels:
            motion.append(_conv(channels, cout, 2))
            channels = cout
        self.motion_encoder = nn.Sequential(*motion)
        pair, cin = [], 4 * cin
        for cout in pair_channels:
            pair.append(_conv(cin, cout, 2))
            cin = cout
        self.pair_encoder = nn.Sequential(*pair)
        h, w = self._feature_size()
        for _ in pair_channels:
            h, w = (h + 1) // 2, (w + 1) // 2
        self.project = nn.Linear(pair_channels[-1] * h * w, hidden_size)
        self.temporal = nn.ModuleList(
            nn.Conv1d(hidden_size, hidden_size, kernel_size, padding=2**i * (kernel_size // 2), dilation=2**i)
            for i in range(temporal_layers)
        )
        self.norms = nn.ModuleList(nn.GroupNorm(1, hidden_size) for _ in range(temporal_layers))
        self.heads = nn.ModuleDict({name: nn.Linear(hidden_size, n) for name, n in HEADS.items()})

    def _feature_size(self) -> tuple[int, int]:
        h, w = self.config.height, self.config.width
        for _ in self.config.frame_channels:
            h, w = (h + 1) // 2, (w + 1) // 2
        return h, w

    def prepare(self, frames: torch.Tensor | np.ndarray) -> torch.Tensor:
        """uint8 frames [B, T, H, W, 3] (any size) -> float [B, T, 3, h, w] in [-1, 1] at the IDM size."""
        frames = torch.as_tensor(frames)
        if frames.ndim != 5 or frames.shape[-1] != 3:
            raise ValueError(f"IDM input must be frames [B, T, H, W, 3], got {tuple(frames.shape)}")
        b, t = frames.shape[:2]
        images = frames.to(self.device).flatten(0, 1).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        size = (self.config.height, self.config.width)
        if images.shape[-2:] != size:
            images = F.interpolate(images, size=size, mode="area")
        return images.unflatten(0, (b, t))  # [B, T, 3, h, w]

    def frame_features(self, frames: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Per-frame feature vectors [B, T, D] (the frame encoder's map, flattened)."""
        images = self.prepare(frames)
        return self.frame_encoder(images.flatten(0, 1)).flatten(1).unflatten(0, images.shape[:2])

    def forward(self, frames: torch.Tensor | np.ndarray) -> dict[str, torch.Tensor]:
        """uint8 frames [B, T, H, W, 3], T >= 2 -> {head: [B, T-1, n]} for transitions 1..T-1."""
        images = self.prepare(frames)  # [B, T, 3, h, w]
        b, t = images.shape[:2]
        if t < 2:
            raise ValueError(f"the IDM needs at least 2 frames per clip, got {t}")
        maps = self.frame_encoder(images.flatten(0, 1)).unflatten(0, (b, t))  # [B, T, C, h', w']
        before, after = maps[:, :-1], maps[:, 1:]
        pixels = [images[:, :-1], images[:, 1:]] + ([flow_terms(images)] if self.config.flow_terms else [])
        pixels = torch.cat(pixels, dim=2).flatten(0, 1)  # [B*(T-1), 6 (+5), h, w]
        motion = self.motion_encoder(pixels).unflatten(0, (b, t - 1))  # [B, T-1, C, h', w']
        pairs = torch.cat([before, after, after - before, motion], dim=2).flatten(0, 1)  # [B*(T-1), 4C, ...]
        x = self.project(self.pair_encoder(pairs).flatten(1)).unflatten(0, (b, t - 1))  # [B, T-1, D]
        x = x.transpose(1, 2)  # [B, D, T-1]
        for conv, norm in zip(self.temporal, self.norms, strict=True):
            x = x + conv(F.silu(norm(x)))
        x = x.transpose(1, 2)  # [B, T-1, D]
        return {name: head(x) for name, head in self.heads.items()}

    @torch.no_grad()
    def predict(self, frames: torch.Tensor | np.ndarray) -> list[ControlLabels]:
        """Per clip, the labels the IDM reads (frame 0 gets the null action, as `a[0]` is)."""
        return decode_outputs(self.read(frames))

    @torch.no_grad()
    def read(self, frames: torch.Tensor | np.ndarray) -> dict[str, torch.Tensor]:
        """The outputs `predict` decodes, {head: [B, T-1, n]}: the forward's; with `mirror_average`, the
        mean of the outputs of the clip and of its mirror, mirrored back; with `reverse_average`, the
        camera's the mean of that and of the clip played backwards, undone; with `read_window`, a
        longer clip read window by window."""
        frames = torch.as_tensor(frames)
        window = self.config.read_window
        if window is None or frames.ndim != 5 or frames.shape[1] <= window:
            return self._read_clip(frames)
        b, t = frames.shape[:2]
        starts, owners = read_windows(t, window)
        out: dict[str, torch.Tensor] = {}
        for index, start in enumerate(starts):
            transitions = torch.from_numpy(np.flatnonzero(owners == index))  # 0-based: transition k + 1
            for name, value in self._read_clip(frames[:, start:start + window]).items():  # [B, window-1, n]
                if name not in out:
                    out[name] = value.new_empty(b, t - 1, value.shape[-1])
                out[name][:, transitions] = value[:, transitions - start]
        return out

    def _read_clip(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self._read_both_ways(frames)
        if self.config.reverse_average:
            backwards = reverse(self._read_both_ways(torch.as_tensor(frames).flip(1)))  # T flipped
            out.update({name: (out[name] + value) / 2 for name, value in backwards.items()})
        return out

    def _read_both_ways(self, frames: torch.Tensor | np.ndarray) -> dict[str, torch.Tensor]:
        out = self(frames)
        if self.config.mirror_average:
            mirrored = mirror(self(torch.as_tensor(frames).flip(3)))  # [B, T, H, W, 3]: W flipped
            out = {name: (value + mirrored[name]) / 2 for name, value in out.items()}
        return out


class IDMEnsemble(nn.Module):
    """IDMs that read a clip together, from the mean of their outputs (`InverseDynamicsModel.read`).

    Its directory holds one IDM directory per member and `ensemble.json` naming them; `load_idm`
    reads either kind. The feature cosines of evaluation use the first member's frame encoder.
    """

    def __init__(self, members: list[InverseDynamicsModel]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an IDM ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def frame_features(self, frames: torch.Tensor | np.ndarray) -> torch.Tensor:
        return self.members[0].frame_features(frames)

    @torch.no_grad()
    def predict(self, frames: torch.Tensor | np.ndarray) -> list[ControlLabels]:
        outs = [member.read(frames) for member in self.members]
        return decode_outputs({name: torch.stack([out[name] for out in outs]).mean(0) for name in outs[0]})

    def save_pretrained(self, path: str | Path) -> None:
        path = Path(path)
        names = [member_folder(i) for i in range(len(self.members))]
        for name, member in zip(names, self.members, strict=True):
            member.save_pretrained(path / name)
        write_text_atomic(path / ENSEMBLE_FILE, json.dumps({"members": names}, indent=2) + "\n")


def member_folder(index: int) -> str:
    """The folder of an `IDMEnsemble`'s member `index` in its directory."""
    return f"member_{index}"


def read_windows(length: int, window: int) -> tuple[list[int], np.ndarray]:
    """Windows of `window` frames over a clip of `length` > `window` frames, evenly spaced from its
    first frame to its last, neighbours overlapping by at least half a window. Returns the first frame
    of each and, for each transition 1..length-1, the index of the window whose middle it is nearest
    (ties to the earlier), which holds it: a transition is read about a quarter window or more from
    its window's ends, where the temporal convolutions see padding, unless it is near the clip's."""
    if not MIN_READ_WINDOW <= window < length:
        raise ValueError(f"read_windows needs {MIN_READ_WINDOW} <= window < length, got window {window}, "
                         f"length {length}")
    count = -(-(length - window) // (window // 2)) + 1  # ceil: starts at most window // 2 apart
    starts = [round(k * (length - window) / (count - 1)) for k in range(count)]
    middles = np.asarray(starts) + window / 2  # transition s + window/2 is the middle of window s
    transitions = np.arange(1, length)
    return starts, np.abs(transitions[:, None] - middles[None]).argmin(1)


def load_idm(path: str | Path, torch_dtype: torch.dtype | None = None) -> InverseDynamicsModel | IDMEnsemble:
    """The IDM in directory `path`: one `InverseDynamicsModel`, or an `IDMEnsemble` where the
    directory has `ensemble.json`."""
    path = Path(path)
    if (path / ENSEMBLE_FILE).is_file():
        try:
            names = json.loads((path / ENSEMBLE_FILE).read_text())["members"]
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path / ENSEMBLE_FILE}: not a list of members ({err})") from None
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{path / ENSEMBLE_FILE}: 'members' must name the member folders, got {names!r}")
        return IDMEnsemble([load_idm(path / name, torch_dtype) for name in names])
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: no IDM here (config.json + safetensors from training.train_idm, "
                                f"or {ENSEMBLE_FILE} and its members)")
    return InverseDynamicsModel.from_pretrained(path, torch_dtype=torch_dtype)


def flow_terms(images: torch.Tensor) -> torch.Tensor:
    """Frames [B, T, 3, h, w] -> the Lucas-Kanade products of each pair [B, T-1, 5, h, w]:
    Ix*It, Iy*It, Ix*Ix, Iy*Iy, Ix*Iy of the grey frames, where Ix, Iy are the gradients of the
    pair's mean and It its change, times `FLOW_TERMS_SCALE`. Over a patch that shifts by (u, v)
    pixels, sum(Ix*It) = -(u sum(Ix*Ix) + v sum(Ix*Iy)) and likewise for Iy."""
    grey = images.mean(2)  # [B, T, h, w]
    change = grey[:, 1:] - grey[:, :-1]  # [B, T-1, h, w]
    mean = F.pad((grey[:, 1:] + grey[:, :-1]) / 2, (1, 1, 1, 1), mode="replicate")  # [B, T-1, h+2, w+2]
    gx = (mean[..., 1:-1, 2:] - mean[..., 1:-1, :-2]) / 2
    gy = (mean[..., 2:, 1:-1] - mean[..., :-2, 1:-1]) / 2
    return FLOW_TERMS_SCALE * torch.stack([gx * change, gy * change, gx * gx, gy * gy, gx * gy], dim=2)


def mirror(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Outputs or labels {name: [B, T-1(, n)]} of a clip -> those of its left-right mirror. Class
    logits [..., 3] of `MIRROR_SWAPPED` swap their last two; class indices swap 1 and 2."""
    out = dict(values)
    for name in MIRROR_SWAPPED:
        if name in values:
            value = values[name]
            out[name] = _other_way(value) if value.is_floating_point() else (3 - value) % 3
    for name, signs in MIRROR_SIGNS.items():
        if name in values:
            out[name] = values[name] * values[name].new_tensor(signs)
    return out


def _other_way(logits: torch.Tensor) -> torch.Tensor:
    """Logits [..., 3] of a 3-way head (none, one way, the other) with its two ways swapped."""
    return logits[..., [0, 2, 1]]


def reverse(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Outputs {name: [B, T-1, n]} of a clip played backwards -> the camera outputs of the clip.
    Transition t of the backwards clip is transition T-t of the clip undone: the opposite turn.
    The keys have no such reading (a key changes the velocity, and coasting backwards is not a key)."""
    out = {name: values[name].flip(1) for name in TIME_REVERSIBLE}
    out["pitch"], out["yaw"] = _other_way(out["pitch"]), _other_way(out["yaw"])
    out["camera"] = -out["camera"]
    return out


def decode_outputs(out: dict[str, torch.Tensor]) -> list[ControlLabels]:
    """IDM outputs {head: [B, T-1, n]} -> one `ControlLabels` of T frames per clip."""
    def pad(values: torch.Tensor) -> np.ndarray:  # [B, T-1, ...] -> [B, T, ...], frame 0 null
        return np.concatenate([np.zeros_like(values[:, :1]), values], axis=1)

    groups = {name: pad(out[name].argmax(-1).cpu().numpy()) for name in KEY_GROUPS}
    binary = {name: pad((out[name][..., 0] > 0).long().cpu().numpy()) for name in BINARY_KEYS}
    degrees = out["camera"].float().cpu().numpy() * CAMERA_SCALE_DEG  # [B, T-1, 2]
    # The direction heads decide whether and which way an axis moves, the regression how far. A
    # moving axis turns at least just past the dead zone, so its class stays the heads' even where
    # the regression (pulled toward the many still frames) undershoots.
    states = np.stack([out["pitch"].argmax(-1).cpu().numpy(), out["yaw"].argmax(-1).cpu().numpy()], -1)
    magnitude = np.maximum(np.abs(degrees), np.nextafter(np.float32(DEAD_ZONE_DEG), np.float32(np.inf)))
    degrees = np.where(states == 0, 0.0, magnitude * np.where(states == 1, -1.0, 1.0))
    degrees = pad(degrees.astype(np.float32))
    return [
        ControlLabels(**{k: v[i] for k, v in groups.items()}, **{k: v[i] for k, v in binary.items()},
                      camera_deg=degrees[i])
        for i in range(len(degrees))
    ]


def _class_targets(labels: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The class index of every 3-way head: the key groups, and "pitch"/"yaw" from the camera degrees."""
    states = axis_state(labels["camera_deg"])
    return {**{name: labels[name] for name in KEY_GROUPS}, "pitch": states[..., 0], "yaw": states[..., 1]}


def class_weights(labels: dict[str, torch.Tensor], power: float) -> dict[str, torch.Tensor]:
    """Loss weights that lift the rare classes: frequency ** -power per class, mean 1 over the labels.

    `labels` as `idm_loss` takes them (any leading shape). Key groups and the camera's "pitch"/"yaw"
    get one weight per class; a binary key gets the weight of its pressed frames relative to the
    released ones. `power` 0 gives plain cross-entropy, 1 fully balanced classes.
    """
    weights = {}
    for name, target in _class_targets(labels).items():
        counts = torch.bincount(target.flatten(), minlength=3).float()
        w = counts.clamp_min(1).pow(-power)
        w = w / (w * counts).sum() * counts.sum()
        weights[name] = torch.where(counts > 0, w, w[counts > 0].max())  # unseen: as the rarest seen
    for name in BINARY_KEYS:
        pressed = labels[name].float().mean().clamp(1e-3, 1 - 1e-3)
        weights[name] = ((1 - pressed) / pressed).pow(power).reshape(1)
    return weights


def idm_loss(
    out: dict[str, torch.Tensor],
    labels: dict[str, torch.Tensor],
    weights: dict[str, torch.Tensor] | None = None,
    travel_weight: float = 1.0,
) -> tuple[torch.Tensor, dict]:
    """Cross-entropy per head (+ smooth L1 on camera degrees and, where `labels` has it, on the
    travel) against `labels` {name: [B, T-1(, n)]}.

    `weights` (from `class_weights`): per-class weights of the cross-entropies, the positive weight
    of the binary keys. `labels["travel"]` [B, T-1, 3] in blocks is NaN on clips without poses,
    which the travel term leaves out; `travel_weight` scales that term.
    """
    weights = weights or {}

    def weight(name: str) -> torch.Tensor | None:
        return weights[name].to(out[name]) if name in weights else None

    camera = labels["camera_deg"]  # [B, T-1, 2]
    terms = {}
    for name, target in _class_targets(labels).items():
        terms[name] = F.cross_entropy(out[name].flatten(0, 1), target.flatten(), weight=weight(name))
    for name in BINARY_KEYS:
        terms[name] = F.binary_cross_entropy_with_logits(
            out[name][..., 0], labels[name].float(), pos_weight=weight(name)
        )
    terms["camera"] = F.smooth_l1_loss(out["camera"], camera / CAMERA_SCALE_DEG, beta=0.1)
    travel = labels.get("travel")
    known = None if travel is None else ~travel.isnan().any(-1)  # [B, T-1]
    if travel_weight and known is not None and known.any():
        terms["travel"] = travel_weight * F.smooth_l1_loss(
            out["travel"][known], travel[known] / TRAVEL_SCALE, beta=0.1)
    total = sum(terms.values())
    return total, {name: value.detach() for name, value in terms.items()}
