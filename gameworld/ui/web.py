"""The Gradio web demo: one world per browser session, live frames while keys are held.

    demo = WebDemo(source_factory(SourceChoice()), WebConfig(max_sessions=4))
    demo.launch()                                   # http://127.0.0.1:7860, never a public share link

Each browser session (Gradio's session hash) gets its own `FrameSource`, recorder and settings
from a `SessionPool` with a limit and an idle timeout; when every seat is taken, a newcomer is told
the server is full instead of slowing everyone down. The page gathers keys, arrow keys, frame drags
and touch-pad presses (`web_page.py`) and a timer hands them to `step` at the world's frame rate
while there is input, and for a second after (a jump lands); an idle world costs nothing.

API (for `gradio_client`): `/start(start_from, biome, seed, image, files)`, `/step(action_json)`,
`/configure(steps, speculative, temperature, motion_prior, still_level)`, `/download_video()`,
`/download_episode()`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import numpy as np

from gameworld.actions import Action
from gameworld.atomic import staged
from gameworld.data import EpisodeError
from gameworld.ui.hud import FrameTimer, hud_lines
from gameworld.ui.recorder import SessionRecorder
from gameworld.ui.sources import EngineSource, FrameSource, SideBySide, StartScene
from gameworld.ui.web_page import HELP_MD, INPUT_JS, PAD_HTML, PAGE_CSS, TAKE_INPUT_JS
from gameworld.voxel import BIOMES, VoxelWorld

START_KINDS = ("biome", "image", "video")
NO_SESSION = "No world is running in this tab: press **Start / reset**."
EXPORT_NAME = "gameworld-session"
FRAME_HEIGHT_PX = 432  # the frame on the page (256x144 frames: 3x)
GALLERY_HEIGHT_PX = 250


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"  # loopback only unless asked: the demo has no authentication
    port: int = 7860
    max_sessions: int = 4  # worlds at once; one more visitor is told the server is full
    idle_timeout_s: float = 300.0  # a world with no input for this long is closed
    coast_frames: int = 20  # frames still stepped after the last input (a jump lands, a turn settles)
    max_record_frames: int = 6000  # the longest recording a session can download (5 min at 20 frames/s)
    frame_format: str = "jpeg"  # how frames travel to the page: "jpeg" (small, fast) or "png" (exact pixels)
    title: str = "gameworld"

    def __post_init__(self) -> None:
        if self.max_sessions < 1 or self.idle_timeout_s <= 0 or self.coast_frames < 0:
            raise ValueError(
                f"WebConfig needs max_sessions >= 1, idle_timeout_s > 0, coast_frames >= 0; got {self}"
            )
        if self.frame_format not in ("jpeg", "png", "webp"):
            raise ValueError(f"WebConfig.frame_format={self.frame_format!r}: use jpeg, png or webp")
        if not 0 < self.port < 65536:
            raise ValueError(f"WebConfig.port={self.port} is not a TCP port")


class ServerFull(RuntimeError):
    pass


@dataclass
class WebSession:
    """One browser session's world: its own source, recorder and scratch directory."""

    source: FrameSource
    directory: Path
    recorder: SessionRecorder
    last_input: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    timer: FrameTimer = field(default_factory=FrameTimer)
    frame: np.ndarray | None = None
    last_action: Action | None = None
    coast: int = 0  # frames left to step without input
    closed: bool = False

    @property
    def playing(self) -> bool:
        return self.frame is not None and not self.closed

    def close(self) -> None:
        with self.lock:  # not while a step or a start is running
            self.closed = True
            self.recorder.close()
            shutil.rmtree(self.directory, ignore_errors=True)


class SessionPool:
    """Sessions by key, at most `limit` at once; those idle for `idle_timeout_s` are closed."""

    def __init__(
        self, factory: Callable[[], FrameSource], limit: int, idle_timeout_s: float,
        max_record_frames: int | None = None, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.factory, self.limit, self.idle_timeout_s = factory, limit, idle_timeout_s
        self.max_record_frames = max_record_frames
        self.clock = clock
        self._sessions: dict[str, WebSession] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self, key: str) -> WebSession:
        """The session of `key`, made if new; `ServerFull` when every seat is taken."""
        self.sweep()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                if len(self._sessions) >= self.limit:
                    raise ServerFull(
                        f"The server is full: every seat (of {self.limit}) has a world running. "
                        f"A seat frees up after {self.idle_timeout_s / 60:g} minutes without input; "
                        "try again soon."
                    )
                directory = Path(tempfile.mkdtemp(prefix="gameworld-web-"))
                recorder = SessionRecorder(directory, max_frames=self.max_record_frames)
                session = WebSession(self.factory(), directory, recorder, self.clock())
                self._sessions[key] = session
            session.last_input = self.clock()
            return session

    def sessions(self) -> list[WebSession]:
        with self._lock:
            return list(self._sessions.values())

    def get(self, key: str) -> WebSession | None:
        with self._lock:
            return self._sessions.get(key)

    def close(self, key: str) -> None:
        with self._lock:
            session = self._sessions.pop(key, None)
        if session is not None:
            session.close()

    def sweep(self) -> list[str]:
        """Close the sessions idle for longer than the timeout; their keys."""
        now = self.clock()
        with self._lock:
            idle = [key for key, s in self._sessions.items() if now - s.last_input > self.idle_timeout_s]
        for key in idle:
            self.close(key)
        return idle

    def close_all(self) -> None:
        for key in list(self._sessions):
            self.close(key)


def biome_thumbnails(width: int = 160, height: int = 90) -> list[tuple[np.ndarray, str]]:
    """The first frame of each biome (seed 0), for the start-scene gallery."""
    return [(VoxelWorld(seed=0, biome=b, width=width, height=height).reset(), b) for b in BIOMES]


def start_video_from_files(paths: list[str], directory: Path) -> Path:
    """Copy an uploaded `.mp4` (with its `.jsonl` and `.json`, if given) under one stem; the `.mp4` path."""
    by_suffix: dict[str, list[Path]] = {}
    for path in map(Path, paths):
        by_suffix.setdefault(path.suffix.lower(), []).append(path)
    unknown = sorted(set(by_suffix) - {".mp4", ".jsonl", ".json"})
    if unknown:
        raise ValueError(f"a start video is an .mp4, maybe with its .jsonl and .json; got {unknown} files")
    if any(len(files) > 1 for files in by_suffix.values()) or ".mp4" not in by_suffix:
        raise ValueError("give exactly one .mp4 (and at most one .jsonl and one .json) to start from")
    target = directory / "start"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    stem = by_suffix[".mp4"][0].stem
    for suffix, (path,) in by_suffix.items():
        shutil.copyfile(path, target / f"{stem}{suffix}")
    return target / f"{stem}.mp4"


def pick_biome(event: gr.SelectData) -> tuple[str, str]:
    """Start from the biome of the gallery picture clicked: -> (start_from, biome)."""
    return "biome", BIOMES[event.index]


def zip_episode(mp4: Path, target: Path) -> Path:
    """The episode of `mp4` (its .mp4, .jsonl and .json) as one zip, written atomically."""
    with staged(target) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        for suffix in (".mp4", ".jsonl", ".json"):
            archive.write(mp4.with_suffix(suffix), mp4.with_suffix(suffix).name)
    return target


class WebDemo:
    """The Gradio app around a `SessionPool` of sources made by `factory`."""

    def __init__(self, factory: Callable[[], FrameSource], config: WebConfig | None = None) -> None:
        self.config = config or WebConfig()
        self.pool = SessionPool(factory, self.config.max_sessions, self.config.idle_timeout_s,
                                self.config.max_record_frames)
        probe = factory()  # what kind of world this server plays, for the page's controls
        self.is_model = isinstance(probe, (EngineSource, SideBySide))
        self.fps = probe.fps
        self.label = probe.label if self.is_model else "the voxel game"
        self.default_settings = probe.settings()
        self.blocks: gr.Blocks | None = None

    # ------------------------------------------------------------------------------------ handlers

    def _session(self, request: gr.Request | None) -> WebSession | None:
        return self.pool.get(self._key(request))

    @staticmethod
    def _key(request: gr.Request | None) -> str:
        if request is None or not request.session_hash:
            raise gr.Error("no browser session: this endpoint needs a Gradio session")
        return request.session_hash

    def _hud(self, session: WebSession) -> str:
        status = session.source.status()
        recorder = session.recorder
        status["recording"] = f"{recorder.frames} frames" + (" (full)" if recorder.full else "")
        return "  \n".join(hud_lines(session.timer, session.last_action, status))

    def start(
        self, start_from: str, biome: str, seed: float | None, image: np.ndarray | None,
        files: list[str] | None, request: gr.Request,
    ):
        """Start (or restart) this session's world; -> frame, HUD, status, timer."""
        key = self._key(request)
        try:
            scene = self._scene(start_from, biome, seed, image, files, request)
            session = self.pool.open(key)
        except ServerFull as err:
            return None, "", f"**{err}**", gr.Timer(active=False)
        except (ValueError, FileNotFoundError, EpisodeError) as err:
            raise gr.Error(str(err)) from None
        with session.lock:
            if session.closed:
                return None, "", NO_SESSION, gr.Timer(active=False)
            try:
                frame, info = session.source.reset(scene)
            except (ValueError, FileNotFoundError, EpisodeError) as err:
                failed = str(err)
            else:
                failed = None
                session.frame, session.last_action, session.coast = frame, None, 0
                session.timer.reset()
                session.recorder.start(frame, info, session.source.fps, session.source.meta())
                hud = self._hud(session)
        if failed is not None:
            if session.frame is None:  # it never started: give its seat back
                self.pool.close(key)
            raise gr.Error(failed)
        return frame, hud, f"Playing {session.source.label}.", gr.Timer(active=True)

    def _scene(self, start_from, biome, seed, image, files, request) -> StartScene:
        if start_from not in START_KINDS:
            raise ValueError(f"start_from must be one of {START_KINDS}, got {start_from!r}")
        seed = 0 if seed is None else int(seed)
        if start_from == "image":
            if image is None:
                raise ValueError("choose an image to start from (or start from a biome)")
            return StartScene(seed=seed, biome=biome, image=np.asarray(image, dtype=np.uint8)[..., :3])
        if start_from == "video":
            if not files:
                raise ValueError("upload an .mp4 (with its .jsonl and .json for an episode) to start from")
            session = self.pool.open(self._key(request))
            return StartScene(seed=seed, biome=biome, video=start_video_from_files(files, session.directory))
        return StartScene(seed=seed, biome=biome)

    def step(self, action_json: str, request: gr.Request):
        """One frame under the input gathered since the last tick; -> frame, HUD (skipped when idle)."""
        session = self._session(request)
        if session is None:
            return gr.skip(), NO_SESSION
        try:
            action = session.source.space.resolve(Action.from_dict(json.loads(action_json)))
        except (ValueError, TypeError, AttributeError) as err:
            raise gr.Error(f"bad action {action_json!r}: {err}") from None
        with session.lock:
            if not session.playing:
                return gr.skip(), NO_SESSION
            if action.is_null:
                if session.coast <= 0:
                    return gr.skip(), gr.skip()
                session.coast -= 1
            else:
                session.coast = self.config.coast_frames
                session.last_input = self.pool.clock()
            started = time.perf_counter()
            frame, info = session.source.step(action)
            session.timer.record(time.perf_counter() - started)
            session.frame, session.last_action = frame, action
            session.recorder.add(action, frame, info)
            return frame, self._hud(session)

    def configure(
        self,
        steps: float,
        speculative: float,
        temperature: float,
        motion_prior: float,
        still_level: float,
        request: gr.Request,
    ) -> str:
        """Change the model's sampling steps, speculative frames, temperature, motion prior level and
        still frames' level (0: off); -> HUD."""
        session = self._session(request)
        if session is None or not session.playing:
            return NO_SESSION
        if not self.is_model:
            raise gr.Error("the voxel game has no generation settings")
        with session.lock:
            try:
                session.source.configure(
                    steps=int(steps), speculative=int(speculative), temperature=float(temperature),
                    motion_prior=float(motion_prior) or None, still_level=float(still_level) or None,
                )
            except ValueError as err:
                raise gr.Error(str(err)) from None
            return self._hud(session)

    def _export(self, request: gr.Request) -> Path:
        session = self._session(request)
        if session is None or not session.playing:
            raise gr.Error("nothing recorded yet: press Start / reset and play a little")
        with session.lock:
            return session.recorder.save(session.directory / "export" / EXPORT_NAME)[0]

    def download_video(self, request: gr.Request) -> str:
        """This session since its last start as an H.264 .mp4."""
        return str(self._export(request))

    def download_episode(self, request: gr.Request) -> str:
        """This session as a native episode (.mp4 + .jsonl + .json) in a .zip."""
        mp4 = self._export(request)
        return str(zip_episode(mp4, mp4.with_suffix(".zip")))

    def leave(self, request: gr.Request) -> None:
        """The tab closed: free its seat."""
        if request is not None and request.session_hash:
            self.pool.close(request.session_hash)

    # ------------------------------------------------------------------------------------ page

    def build(self) -> gr.Blocks:
        with gr.Blocks(title=self.config.title, delete_cache=(60, 600)) as blocks:
            gr.Markdown(f"# gameworld\nPlaying **{self.label}**. {HELP_MD}")
            with gr.Row():
                with gr.Column(scale=3):
                    frame = gr.Image(label="world", interactive=False, format=self.config.frame_format,
                                     elem_id="gw-frame",
                                     show_label=False, buttons=[], height=FRAME_HEIGHT_PX)
                    gr.HTML(PAD_HTML)
                with gr.Column(scale=2):
                    status = gr.Markdown(elem_id="gw-status")
                    hud = gr.Markdown(elem_id="gw-hud")
                    start_button = gr.Button("Start / reset", variant="primary", elem_id="gw-start")
                    kinds = list(START_KINDS) if self.is_model else ["biome"]
                    start_from = gr.Radio(kinds, value="biome", label="start from", visible=self.is_model)
                    gallery = gr.Gallery(biome_thumbnails(), label="biome", columns=4,
                                         height=GALLERY_HEIGHT_PX, allow_preview=False, elem_id="gw-biomes")
                    with gr.Row():
                        biome = gr.Dropdown(list(BIOMES), value="forest", label="biome")
                        seed = gr.Number(0, precision=0, label="seed")
                    image = gr.Image(label="start image", type="numpy", sources=["upload"],
                                     visible=self.is_model)
                    files = gr.File(label="start video: an .mp4, or an episode's .mp4 + .jsonl + .json",
                                    file_count="multiple", file_types=[".mp4", ".jsonl", ".json"],
                                    visible=self.is_model)
                    with gr.Row(visible=self.is_model):
                        defaults = self.default_settings
                        steps = gr.Slider(1, 8, step=1, value=defaults.get("steps", 4), label="steps")
                        speculative = gr.Slider(0, 8, step=1, value=defaults.get("speculative", 0),
                                                label="speculative frames")
                        temperature = gr.Slider(0, 1.5, step=0.05, value=defaults.get("temperature", 1.0),
                                                label="temperature (< 1: calmer frames)")
                        motion_prior = gr.Slider(0, 0.95, step=0.05, value=defaults.get("motion_prior") or 0,
                                                 label="motion prior: start level of moving frames (0: off)")
                        still_level = gr.Slider(0, 0.95, step=0.05, value=defaults.get("still_level") or 0,
                                                label="still frames: start level from the rest (0: off)")
                    with gr.Row():
                        video_button = gr.Button("Download mp4")
                        episode_button = gr.Button("Download episode (.zip)")
                    download = gr.File(label="download", interactive=False)
            action = gr.Textbox(visible="hidden", elem_id="gw-action")
            ticker = gr.Timer(1.0 / self.fps, active=False)

            start_inputs = [start_from, biome, seed, image, files]
            start_outputs = [frame, hud, status, ticker]
            start_button.click(self.start, start_inputs, start_outputs, api_name="start",
                               show_progress="minimal")
            blocks.load(self.start, start_inputs, start_outputs, api_visibility="private",
                        show_progress="minimal")
            ticker.tick(self.step, [action], [frame, hud], js=TAKE_INPUT_JS, api_name="step",
                        show_progress="hidden", trigger_mode="once", queue=False,
                        concurrency_limit=self.config.max_sessions)
            gallery.select(pick_biome, None, [start_from, biome], api_visibility="private").then(
                self.start, start_inputs, start_outputs, api_visibility="private", show_progress="minimal")
            # An upload picks its kind of start.
            image.upload(lambda: "image", None, start_from, api_visibility="private")
            files.upload(lambda: "video", None, start_from, api_visibility="private")
            settings = [steps, speculative, temperature, motion_prior, still_level]
            gr.on([slider.release for slider in settings], self.configure, settings, hud,
                  api_name="configure")
            video_button.click(self.download_video, None, download, api_name="download_video")
            episode_button.click(self.download_episode, None, download, api_name="download_episode")
            blocks.unload(self.leave)
        blocks.queue(default_concurrency_limit=self.config.max_sessions)
        self.blocks = blocks
        return blocks

    def launch(self, block: bool = True, **kwargs):
        """Serve on `config.host:config.port` (never a public share link); `block=False` returns at once."""
        blocks = self.blocks or self.build()
        return blocks.launch(
            server_name=self.config.host, server_port=self.config.port, share=False,
            prevent_thread_lock=not block, js=INPUT_JS, css=PAGE_CSS, footer_links=["api"], **kwargs,
        )

    def close(self) -> None:
        if self.blocks is not None:
            self.blocks.close()
        self.pool.close_all()
