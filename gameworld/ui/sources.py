"""Frame sources: the one interface both front ends play, whatever makes the frames.

    source = open_source(SourceChoice(model="runs/tiny"))   # or voxel=True, or side_by_side=True
    frame, info = source.reset(StartScene(seed=0, biome="forest"))
    frame, info = source.step(Action.of("forward"))        # uint8 [H, W, 3] and a dict
    source.status()                                        # what a HUD shows besides frames/s

`VoxelSource` plays the ground-truth voxel game, `EngineSource` a world model through
`WorldEngine`, and `SideBySide` both on the same input, voxel left and model right. `reset()`
without a scene starts the last scene again (what R does in the pygame client).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gameworld.actions import Action, ActionSpace
from gameworld.voxel import BIOMES, VoxelWorld

SIDE_BY_SIDE_GAP = 4  # dark pixels between the two views


@dataclass(frozen=True, eq=False)
class StartScene:
    """Where a session starts: the voxel game's `seed` and `biome`, an `image` (uint8 [H, W, 3]),
    or the first frames of `video` (a native/VPT episode or a plain video file)."""

    seed: int = 0
    biome: str = "forest"
    image: np.ndarray | None = field(default=None, repr=False)
    video: Path | None = None

    def __post_init__(self) -> None:
        if self.biome not in BIOMES:
            raise ValueError(f"unknown biome {self.biome!r}; choose one of {', '.join(BIOMES)}")
        if not isinstance(self.seed, (int, np.integer)):
            raise ValueError(f"the start seed must be an integer, got {self.seed!r}")
        if self.image is not None and self.video is not None:
            raise ValueError("start from an image or from a video, not both")
        if self.image is not None:
            image = np.asarray(self.image)
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"a start image must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
            object.__setattr__(self, "image", image)
        if self.video is not None:
            object.__setattr__(self, "video", Path(self.video))

    @property
    def kind(self) -> str:
        return "image" if self.image is not None else "video" if self.video is not None else "voxel"

    def meta(self) -> dict:
        """What an episode records about its start."""
        if self.kind == "image":
            return {"start": "image"}
        if self.kind == "video":
            return {"start": "video", "start_video": str(self.video)}
        return {"start": "voxel", "seed": int(self.seed), "biome": self.biome}


class FrameSource(ABC):
    """Something that makes frames from actions. `reset` and `step` give `(frame, info)`."""

    label: str  # what the HUD calls it
    fps: float  # the rate its frames were made for
    space: ActionSpace

    def __init__(self, scene: StartScene | None = None) -> None:
        self.scene = scene or StartScene()

    def reset(self, scene: StartScene | None = None) -> tuple[np.ndarray, dict]:
        """Start `scene` (default: the last one again) and give its first frame; a scene that
        cannot start raises and leaves `self.scene` as it was."""
        scene = scene or self.scene
        self.check_scene(scene)
        result = self._start(scene)
        self.scene = scene
        return result

    def check_scene(self, scene: StartScene) -> None:  # noqa: B027 (optional hook: any scene by default)
        """Raise a `ValueError` when this source cannot start `scene`."""

    @abstractmethod
    def _start(self, scene: StartScene) -> tuple[np.ndarray, dict]: ...

    @abstractmethod
    def step(self, action: Action) -> tuple[np.ndarray, dict]: ...

    def status(self) -> dict[str, str]:
        """HUD fields (name -> text) besides the ones every loop measures."""
        return {"world": self.label}

    def settings(self) -> dict:
        """The generation settings a front end may change with `configure` (none by default)."""
        return {}

    def configure(self, **changes) -> None:
        if changes:
            raise ValueError(f"{self.label} has no settings to change (got {sorted(changes)})")

    def meta(self) -> dict:
        """JSON data a recorded episode keeps about where its frames came from."""
        return self.scene.meta()


class VoxelSource(FrameSource):
    """The voxel game itself: the ground truth, at any frame size."""

    space = ActionSpace.minecraft()
    fps = 20.0

    def __init__(
        self, width: int = 256, height: int = 144, hud: bool = True, scene: StartScene | None = None
    ) -> None:
        super().__init__(scene)
        VoxelWorld(width=width, height=height)  # validates the size now, not at the first reset
        self.width, self.height, self.hud = width, height, hud
        self.world: VoxelWorld | None = None

    @property
    def label(self) -> str:
        return f"voxel {self.scene.biome} (seed {self.scene.seed})"

    def check_scene(self, scene: StartScene) -> None:
        if scene.kind != "voxel":
            raise ValueError(
                f"the voxel game starts only from a seed and biome, not from an {scene.kind}; "
                "starting from an image or a video needs a world model"
            )

    def _start(self, scene: StartScene) -> tuple[np.ndarray, dict]:
        self.world = VoxelWorld(seed=scene.seed, biome=scene.biome, width=self.width, height=self.height,
                                hud=self.hud)
        frame = self.world.reset()
        return frame, self.world.info()

    def step(self, action: Action) -> tuple[np.ndarray, dict]:
        if self.world is None:
            raise RuntimeError("call reset() before step()")
        return self.world.step(action)

    def meta(self) -> dict:
        return {"source": "voxel", "player": "human", "hud": self.hud, **self.scene.meta()}


class EngineSource(FrameSource):
    """A world model, through `WorldEngine` (which owns the whole generation loop)."""

    def __init__(self, engine, name: str, scene: StartScene | None = None) -> None:
        super().__init__(scene)
        self.engine = engine
        self.name = name
        self.space = engine.space
        self.fps = float(engine.config.fps)
        self.width, self.height = engine.config.width, engine.config.height

    @property
    def label(self) -> str:
        return f"model {self.name} ({self.engine.device.type})"

    def _start(self, scene: StartScene) -> tuple[np.ndarray, dict]:
        frame = self.engine.reset(frames=scene.image, seed=scene.seed, biome=scene.biome, video=scene.video)
        return frame, {}

    def step(self, action: Action) -> tuple[np.ndarray, dict]:
        return self.engine.step(action), {}

    def status(self) -> dict[str, str]:
        settings, stats = self.engine.settings, self.engine.stats
        prior = settings.motion_prior
        status = {"world": self.label, "steps": f"{settings.steps} ({settings.sampler})",
                  "temperature": f"{settings.temperature:g}",
                  "motion prior": "off" if prior is None else f"from noise level {prior:g}"}
        still = None if prior is None else settings.still_level  # the prior says when the view is still
        status["still frames"] = "from pure noise" if still is None else f"from the rest frame at {still:g}"
        if settings.speculative:
            rate = stats.acceptance_rate
            accepted = "-" if rate is None else f"{100 * rate:.0f}% accepted"
            status["speculative"] = f"{settings.speculative} ahead, {accepted}"
        else:
            status["speculative"] = "off"
        return status

    def settings(self) -> dict:
        names = ("steps", "speculative", "temperature", "motion_prior", "still_level")
        return {name: getattr(self.engine.settings, name) for name in names}

    def configure(self, **changes) -> None:
        self.engine.configure(**changes)

    def meta(self) -> dict:
        return {"source": "model", "model": self.name, **self.scene.meta()}


class SideBySide(FrameSource):
    """The voxel game (left) and a world model (right) on the same input, from the same first frame."""

    def __init__(self, voxel: VoxelSource, model: EngineSource, scene: StartScene | None = None) -> None:
        if (voxel.width, voxel.height) != (model.width, model.height):
            raise ValueError(
                f"side by side needs one frame size: voxel {voxel.width}x{voxel.height}, "
                f"model {model.width}x{model.height}"
            )
        super().__init__(scene)
        self.voxel, self.model = voxel, model
        self.space, self.fps = model.space, model.fps

    @property
    def label(self) -> str:
        return f"{self.voxel.label} | {self.model.label}"

    def check_scene(self, scene: StartScene) -> None:
        self.voxel.check_scene(scene)

    def _start(self, scene: StartScene) -> tuple[np.ndarray, dict]:
        truth, info = self.voxel.reset(scene)
        generated, _ = self.model.reset(StartScene(seed=scene.seed, biome=scene.biome, image=truth))
        return self._join(truth, generated, info)

    def step(self, action: Action) -> tuple[np.ndarray, dict]:
        truth, info = self.voxel.step(action)
        generated, _ = self.model.step(action)
        return self._join(truth, generated, info)

    @staticmethod
    def _join(truth: np.ndarray, generated: np.ndarray, info: dict) -> tuple[np.ndarray, dict]:
        gap = np.zeros((truth.shape[0], SIDE_BY_SIDE_GAP, 3), dtype=np.uint8)
        frame = np.concatenate([truth, gap, generated], axis=1)  # [H, 2W + gap, 3]
        return frame, {**info, "views": {"voxel": truth, "model": generated}}

    def status(self) -> dict[str, str]:
        return {**self.model.status(), "world": self.label}

    def settings(self) -> dict:
        return self.model.settings()

    def configure(self, **changes) -> None:
        self.model.configure(**changes)

    def meta(self) -> dict:
        return {"source": "side-by-side", "player": "human", "model": self.model.name, **self.scene.meta()}


@dataclass(frozen=True)
class SourceChoice:
    """What to play: the voxel game, a model directory (or shipped name), or both side by side.

    With neither `voxel` nor `model`, the shipped default model plays when it exists, else the
    voxel game. `size` applies to the voxel game alone (a model has its own resolution).
    """

    voxel: bool = False
    model: str | None = None
    side_by_side: bool = False
    size: tuple[int, int] | None = None
    hud: bool = True
    device: str | None = None
    settings: dict = field(default_factory=dict)  # EngineSettings fields (steps, speculative, ...)

    def __post_init__(self) -> None:
        if self.voxel and (self.model or self.side_by_side):
            raise ValueError("the voxel game alone (voxel) excludes a model and side by side")
        if self.size is not None and not self.voxel and self.resolved_model() is not None:
            raise ValueError("a frame size is for the voxel game only: a model draws at its own resolution")
        if (self.settings or self.device) and self.resolved_model() is None:
            raise ValueError("generation settings and a device apply to a world model (a model directory)")
        if self.side_by_side and self.resolved_model() is None:
            raise ValueError("side by side needs a world model (a model directory): no default model ships")

    def resolved_model(self) -> str | None:
        """The model directory or name that will play, or None for the voxel game."""
        if self.voxel:
            return None
        return self.model or ("default" if default_model_available() else None)


def default_model_available() -> bool:
    """True when `gameworld/pretrained/default/` holds a model directory."""
    from gameworld import modeldir

    return (modeldir.PACKAGED_MODELS / "default" / modeldir.CONFIG_NAME).is_file()


def model_name(dir_or_name: str) -> str:
    path = Path(dir_or_name)
    return path.name if path.name else str(dir_or_name)


def source_factory(choice: SourceChoice) -> Callable[[], FrameSource]:
    """A function making fresh, independent sources of `choice` (the model's weights are loaded
    once and shared: each source gets its own engine, cache and settings)."""
    model = choice.resolved_model()
    if model is None:
        width, height = choice.size or (256, 144)
        VoxelSource(width, height, choice.hud)  # bad sizes fail here, not in the first session
        return lambda: VoxelSource(width, height, choice.hud)

    from gameworld.engine import WorldEngine, default_device, default_dtype
    from gameworld.modeldir import load_model_dir
    from gameworld.motion_prior import find_motion_prior

    device = default_device() if choice.device is None else choice.device
    config, tokenizer, world_model = load_model_dir(model, device)
    prior = find_motion_prior(model)
    dtype = default_dtype(device)
    name = model_name(model)

    def build() -> EngineSource:
        engine = WorldEngine(config, tokenizer, world_model, device, dtype, prior, **choice.settings)
        return EngineSource(engine, name)

    unused = [build()]  # bad settings fail here, not in a session; this engine serves the first call

    def make_engine() -> EngineSource:
        return unused.pop() if unused else build()

    def make_pair() -> SideBySide:
        engine = make_engine()
        return SideBySide(VoxelSource(engine.width, engine.height, choice.hud), engine)

    return make_pair if choice.side_by_side else make_engine


def open_source(choice: SourceChoice) -> FrameSource:
    """One source of `choice`."""
    return source_factory(choice)()
