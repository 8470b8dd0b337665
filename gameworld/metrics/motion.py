"""How the view moves, read from the pixels alone: zoom and pan from one frame to the next.

The IDM's reading of a clip is only as good as the IDM, and a blurred frame can fool it. This needs
no network: between consecutive frames it fits one global motion field, a zoom about the centre and
a shift,

    u(x, y) = a * x + tx,   v(x, y) = a * y + ty        (x, y: pixels from the centre)

by Lucas-Kanade least squares on the image gradients, coarse to fine, starting from the shift that
phase correlation finds on the coarsest level (a fast turn moves the view by tens of pixels, beyond
where gradient steps converge). Walking forward zooms in (a > 0) and walking back zooms out;
stepping sideways or turning pans (tx, ty). The bottom fifth of the frame (the hotbar, which never
moves) is left out.

A model's *motion response* is the least-squares slope of its motion on the game's over the same
frames, per component: 1 moves as the game does, 0 stands still (copy-last-frame), below 0 moves
the wrong way, a fraction moves too little.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from gameworld.hud import hotbar_box
from gameworld.metrics.controls import ControlLabels, axis_state
from gameworld.metrics.image import grey

COMPONENTS: tuple[str, ...] = ("zoom", "pan_x", "pan_y")  # a; tx / width; ty / height (per frame)
HUD_SHARE = 0.2  # the bottom share of the frame left out: the hotbar does not move with the view
_SMALLEST_LEVEL = 24  # pixels: the coarsest level of the pyramid is at least this high
MAX_SHIFT_SHARE = 0.25  # of the frame's width / height: the most a view moves in a frame (10 degrees: 7%)
MIN_RMS = 1e-3  # a component the game moves less than this (root mean square per frame) is not scored
# What each input should move: the frames where it is asked for, and the component it moves.
MOTION_GROUPS: dict[str, str] = {"walk": "zoom", "strafe": "pan_x", "turn sideways": "pan_x",
                                 "turn up/down": "pan_y"}


def _grey(frames) -> torch.Tensor:
    """uint8 frames [T, H, W, 3] -> float32 grey [T, 1, H', W] in 0..1, the HUD cut off."""
    x = frames if torch.is_tensor(frames) else torch.from_numpy(np.ascontiguousarray(frames))
    if x.ndim != 4 or x.shape[-1] != 3 or x.shape[0] < 2:
        raise ValueError(f"ego motion needs frames [T >= 2, H, W, 3], got {tuple(x.shape)}")
    images = grey(x.detach().cpu().float().permute(0, 3, 1, 2) / 255)  # [T, 1, H, W]
    keep = round(images.shape[-2] * (1 - HUD_SHARE))
    return images[..., :keep, :]  # [T, 1, H', W]


def _gradients(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences of [N, 1, h, w] (zero at the border)."""
    gx, gy = torch.zeros_like(image), torch.zeros_like(image)
    gx[..., 1:-1] = (image[..., 2:] - image[..., :-2]) / 2
    gy[..., 1:-1, :] = (image[..., 2:, :] - image[..., :-2, :]) / 2
    return gx, gy


def _warp(image: torch.Tensor, matrix: torch.Tensor, centre_y: float, wrap_x: bool = False) -> torch.Tensor:
    """Sample [N, C, h, w] at the points an affine `matrix` [N, 2, 3] maps each pixel to: in pixels
    from the point (w / 2, `centre_y` + 1 / 2), output point p samples the input at
    `matrix[:, :, :2] @ p + matrix[:, :, 2]`. Points beyond the image take the nearest edge pixel,
    or with `wrap_x` come round from the other side in x."""
    n, _, h, w = image.shape
    # affine_grid works in normalised points q = S p + c (S = diag(2 / w, 2 / h); c is the centre
    # point's normalised place, below the middle by centre_y's offset): q_in = S A S^-1 (q - c) + S t + c.
    scale = torch.tensor([2 / w, 2 / h])
    centre = torch.tensor([0.0, 2 * (centre_y + 0.5) / h - 1])
    linear = matrix[:, :, :2] * scale[None, :, None] / scale[None, None, :]  # S A S^-1
    offset = matrix[:, :, 2] * scale + centre - linear @ centre
    theta = torch.cat([linear, offset[..., None]], dim=2).float()  # [N, 2, 3]
    grid = F.affine_grid(theta, list(image.shape), align_corners=False)  # [N, h, w, 2], x and y in -1..1
    if wrap_x:
        grid[..., 0] = torch.remainder(grid[..., 0] + 1, 2) - 1
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _zoom_shift(params: torch.Tensor) -> torch.Tensor:
    """(a, tx, ty) [N, 3] -> the affine matrix [N, 2, 3] of u = a p + t: p maps to (1 + a) p + t."""
    matrix = torch.zeros(len(params), 2, 3)
    matrix[:, 0, 0] = matrix[:, 1, 1] = 1 + params[:, 0]
    matrix[:, :, 2] = params[:, 1:]
    return matrix


def _phase_shift(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """The whole-pixel shift (tx, ty) [N, 2] that best moves `before` onto `after` ([N, 1, h, w]), by
    phase correlation: it finds shifts far beyond what gradient steps converge from. Only shifts up
    to `MAX_SHIFT_SHARE` of the frame are candidates: a picture with repeats in it (a row of trees, a
    view whose sides were wrapped round) also correlates at the repeat's distance."""
    h, w = before.shape[-2:]
    window = torch.outer(torch.hann_window(h, periodic=False), torch.hann_window(w, periodic=False))
    spectra = [torch.fft.rfft2((image - image.mean((-2, -1), keepdim=True)) * window)
               for image in (before, after)]
    cross = spectra[1] * spectra[0].conj()
    surface = torch.fft.irfft2(cross / cross.abs().clamp_min(1e-12), s=(h, w))  # [N, 1, h, w]
    ys = torch.fft.fftfreq(h, 1 / h).abs()[:, None]  # |shift| of each row and column of the surface
    xs = torch.fft.fftfreq(w, 1 / w).abs()[None, :]
    surface = surface.masked_fill((ys > MAX_SHIFT_SHARE * h) | (xs > MAX_SHIFT_SHARE * w), -torch.inf)
    peak = surface.flatten(1).argmax(1)  # [N]
    ty, tx = peak // w, peak % w
    ty, tx = torch.where(ty > h // 2, ty - h, ty), torch.where(tx > w // 2, tx - w, tx)  # wrap around
    return torch.stack([tx, ty], dim=1).float()


def ego_motion(frames, iterations: int = 5) -> np.ndarray:
    """uint8 frames [T, H, W, 3] -> float32 [T - 1, 3]: per transition the zoom `a` and the shift as
    shares of the frame's width and height (`COMPONENTS`), the motion that maps frame t-1 onto t."""
    grey = _grey(frames)
    frame_h = np.shape(frames)[1]
    before, after = grey[:-1], grey[1:]  # [N, 1, h, w]
    levels = []
    level_before, level_after = before, after
    while True:
        levels.append((level_before, level_after))
        if level_before.shape[-2] < 2 * _SMALLEST_LEVEL:
            break
        level_before, level_after = F.avg_pool2d(level_before, 2), F.avg_pool2d(level_after, 2)
    full_h, full_w = before.shape[-2:]  # without the HUD
    params = torch.zeros(len(before), 3)  # (a, tx, ty) with shifts in full-resolution pixels
    coarse_before, coarse_after = levels[-1]
    to_full = torch.tensor([full_w / coarse_before.shape[-1], full_h / coarse_before.shape[-2]])
    params[:, 1:] = _phase_shift(coarse_before, coarse_after) * to_full
    for level_before, level_after in reversed(levels):  # coarse to fine
        h, w = level_before.shape[-2:]
        to_level = torch.tensor([1.0, w / full_w, h / full_h])
        centre_y = (frame_h * h / full_h - 1) / 2  # the whole frame's centre, the HUD's rows included
        y, x = torch.meshgrid(torch.arange(h) - centre_y, torch.arange(w) - (w - 1) / 2, indexing="ij")
        inside = torch.zeros(h, w, dtype=torch.bool)
        margin = max(1, min(h, w) // 16)
        inside[margin:-margin, margin:-margin] = True
        for _ in range(iterations):
            # frame t pulled back onto frame t-1
            warped = _warp(level_after, _zoom_shift(params * to_level), centre_y)
            gx, gy = _gradients((warped + level_before) / 2)
            residual = (warped - level_before)[:, 0][:, inside]  # [N, P]
            gx, gy = gx[:, 0][:, inside], gy[:, 0][:, inside]
            jacobian = torch.stack([gx * x[inside] + gy * y[inside], gx, gy], dim=-1)  # [N, P, 3]
            normal = jacobian.transpose(1, 2) @ jacobian + 1e-6 * torch.eye(3)
            step = torch.linalg.solve(normal, -(jacobian.transpose(1, 2) @ residual[..., None]))[..., 0]
            params = params + step / to_level
    return (params / torch.tensor([1.0, full_w, frame_h])).numpy().astype(np.float32)


def motion_parts(motion: np.ndarray) -> tuple[float, float, float, np.ndarray]:
    """(zoom, pan_x, pan_y, spin) of a motion (zoom, pan_x, pan_y[, roll degrees]), `spin` the [2, 2]
    matrix M with which rows of points p [N, 2] from the centre turn by the roll as p @ M (clockwise
    on screen, y pointing down); M @ p turns a column point back by it."""
    zoom, pan_x, pan_y, roll = (float(v) for v in (*motion, 0.0)[:4])
    cos, sin = np.cos(np.radians(roll)), np.sin(np.radians(roll))
    return zoom, pan_x, pan_y, np.array([[cos, sin], [-sin, cos]])


def apply_motion(frame: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """uint8 frame [H, W, 3] moved by one transition's `motion`, the hotbar kept where it is: what
    the view would show next if it moved so. `motion` is (a, tx / W, ty / H) as `ego_motion` reads
    it, optionally followed by a roll: degrees the picture turns clockwise about the frame's centre
    (a turn sideways while looking up or down).

    What a move uncovers is a guess. Columns uncovered at a side come round from the other side, as
    if the view were a strip of a panorama that closes on itself: a long turn then keeps the scene's
    sky, horizon and texture moving through the view, where repeating the edge column smeared it
    into streaks that no longer show a turn. Rows uncovered at the top or bottom repeat the frame's
    edge row, and what the hotbar hid repeats the row above it: the hotbar never moves into the view."""
    height, width = frame.shape[:2]
    view = frame.copy()
    box = hotbar_box(width, height)
    if box is not None:
        top, bottom, left, right = box
        view[top:bottom, left:right] = view[top - 1, left:right]  # what the hotbar hides: the row above it
    a, tx, ty, spin = motion_parts(motion)
    # a pixel p (from the centre) moves to (1 + a) R p + t; the output's p shows the input's
    # R^T (p - t) / (1 + a), R turning clockwise on screen (y points down) and spin = R^T
    back = torch.tensor(spin, dtype=torch.float32) / (1 + a)  # R^T / (1 + a)
    shift = torch.tensor([tx * width, ty * height])
    matrix = torch.cat([back, -(back @ shift)[:, None]], dim=1)[None]  # [1, 2, 3]
    image = torch.tensor(view, dtype=torch.float32).permute(2, 0, 1)[None]  # [1, 3, H, W]
    warped = _warp(image, matrix, (height - 1) / 2, wrap_x=True)[0]  # [3, H, W]
    moved = warped.permute(1, 2, 0).round().clamp(0, 255).byte().numpy()  # [H, W, 3]
    if box is not None:
        moved[top:bottom, left:right] = frame[top:bottom, left:right]
    return moved


def motion_response(motion: np.ndarray, reference: np.ndarray) -> dict[str, float | None]:
    """Per component of `COMPONENTS`: the least-squares slope of `motion` [N, 3] on `reference` [N, 3]
    (the game's motion over the same frames); None where the reference moves less than `MIN_RMS`."""
    motion, reference = np.asarray(motion, np.float64), np.asarray(reference, np.float64)
    if motion.shape != reference.shape or motion.ndim != 2 or motion.shape[1] != len(COMPONENTS):
        raise ValueError(f"motion response of {motion.shape} against {reference.shape}: need two [N, 3]")
    energy = (reference**2).sum(0)
    moves = energy > len(reference) * MIN_RMS**2
    slope = (motion * reference).sum(0) / np.where(moves, energy, 1.0)
    return {name: float(s) if m else None for name, s, m in zip(COMPONENTS, slope, moves, strict=True)}


def response_by_group(
    motion: np.ndarray, reference: np.ndarray, asked: ControlLabels
) -> dict[str, float | None]:
    """The motion response of each of `MOTION_GROUPS` over the transitions that ask for it:
    `motion` and `reference` [N, 3] and the labels `asked` of the same N transitions (e.g.
    `join_transitions` of the clips' labels); None where no transition asks for it."""
    if len(asked) != len(motion):
        raise ValueError(f"labels of {len(asked)} transitions for {len(motion)} transitions of motion")
    camera = axis_state(asked.camera_deg)  # [N, 2]: pitch, yaw
    frames = {"walk": asked.move != 0, "strafe": asked.strafe != 0,
              "turn sideways": camera[:, 1] != 0, "turn up/down": camera[:, 0] != 0}
    out = {}
    for group, component in MOTION_GROUPS.items():
        mask = frames[group]
        out[group] = motion_response(motion[mask], reference[mask])[component] if mask.any() else None
    return out
