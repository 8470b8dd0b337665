import json

import av
import numpy as np
import pytest

from gameworld.actions import Action, ActionSpace
from gameworld.data import Episode, EpisodeError, episode_complete, open_episode, write_episode
from gameworld.data.episode import episode_paths
from gameworld.data.video import decode_frames, probe_video, write_video


def sample_actions(n: int) -> list[Action]:
    keys = [(), ("forward",), ("forward", "jump"), ("attack",), ("hotbar.2",), ("left", "sprint"), ("use",)]
    turns = [Action.of(*keys[t % len(keys)], camera=(0.25 * t, -1.5 + 0.1 * t)) for t in range(1, n)]
    return [Action.null(), *turns]


def test_lossless_round_trip_is_exact(tmp_path, make_frames):
    frames = make_frames(8)
    actions = sample_actions(8)
    poses = [{"x": float(t), "y": 64.0, "z": np.float32(-t), "yaw": 90.0, "pitch": 0.0} for t in range(8)]
    extras = [{"pose": pose} for pose in poses]
    mp4 = write_episode(tmp_path / "ep", frames, actions, fps=15, meta={"seed": 7, "biome": "forest"},
                        extras=extras, lossless=True)
    assert mp4 == tmp_path / "ep.mp4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep.json", "ep.jsonl", "ep.mp4"]  # no temporaries
    for name in ("ep", "ep.mp4", "ep.jsonl", "ep.json"):
        ep = open_episode(tmp_path / name)
        assert ep.actions == actions
    assert len(ep) == 8 and ep.fps == 15.0
    assert ep.meta["seed"] == 7 and ep.meta["biome"] == "forest" and ep.meta["source"] == "native"
    assert (ep.meta["width"], ep.meta["height"], ep.meta["frame_count"]) == (64, 36, 8)
    assert ep.space == ActionSpace.minecraft()
    assert ep.extras[3] == {"pose": {"x": 3.0, "y": 64.0, "z": -3.0, "yaw": 90.0, "pitch": 0.0}}
    np.testing.assert_array_equal(np.stack(list(ep.frames())), frames)
    np.testing.assert_array_equal(ep.read_frames(2, 6), frames[2:6])


def test_lossy_round_trip_is_within_codec_error(tmp_path, make_frames):
    frames = make_frames(6)
    write_episode(tmp_path / "ep", iter(list(frames)), sample_actions(6))  # any iterable of frames
    ep = open_episode(tmp_path / "ep")
    decoded = np.stack(list(ep.frames())).astype(np.float64)
    assert decoded.shape == frames.shape
    psnr = 10 * np.log10(255**2 / np.mean((decoded - frames) ** 2))
    assert np.abs(decoded - frames).mean() < 6.0 and psnr > 30.0  # yuv420p at crf 18 on a tiny frame
    assert ep.meta["lossless"] is False


def test_jsonl_carries_vpt_fields_and_camera_degrees(tmp_path, make_frames):
    actions = [Action.null(), Action.of("forward", "attack", "hotbar.3", camera=(-1.5, 3.0))]
    write_episode(tmp_path / "ep", make_frames(2), actions)
    line = json.loads((tmp_path / "ep.jsonl").read_text().splitlines()[1])
    assert line["keys"] == ["attack", "forward", "hotbar.3"] and line["camera"] == [-1.5, 3.0]
    assert line["keyboard"]["keys"] == ["key.keyboard.3", "key.keyboard.w"]
    assert line["mouse"]["buttons"] == [0]
    assert line["mouse"]["dx"] == pytest.approx(20.0) and line["mouse"]["dy"] == pytest.approx(-10.0)


def test_custom_space_episode_round_trips(tmp_path, make_frames):
    space = ActionSpace(("left", "right", "fire"), camera=None, name="arcade")
    actions = [Action.null(), Action.of("fire"), Action.of("left", "fire")]
    write_episode(tmp_path / "ep", make_frames(3), actions, meta={"action_space": space}, lossless=True)
    ep = open_episode(tmp_path / "ep")
    assert ep.space == space and ep.actions == actions
    with pytest.raises(ValueError, match=r"action 1: .*unknown key name\(s\) \['forward'\]"):
        write_episode(tmp_path / "bad", make_frames(2), [Action.null(), Action.of("forward")],
                      meta={"action_space": space})


def test_json_marker_is_written_last(tmp_path, make_frames):
    stem = tmp_path / "ep"
    assert not episode_complete(stem)
    write_episode(stem, make_frames(3), sample_actions(3))
    assert episode_complete(stem) and episode_complete(tmp_path / "ep.mp4")
    # A failed rewrite leaves the episode incomplete and no temporary files behind.
    with pytest.raises(ValueError, match="3 frames but 4 actions"):
        write_episode(stem, make_frames(3), sample_actions(4))
    assert not episode_complete(stem)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(EpisodeError, match=r"ep\.json: missing: an unfinished native episode"):
        open_episode(stem)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"actions": [Action.of("jump"), Action.null()]}, "actions.0. must be null"),
        ({"extras": [{"keys": []}, {}]}, r"extras may not use the action fields \['keys'\]"),
        ({"extras": [{}]}, "1 extras for 2 actions"),
        ({"meta": {"fps": 30}}, r"meta may not set \['fps'\]"),
        ({"frames": np.zeros((2, 35, 64, 3), np.uint8)}, "even width and height"),
        ({"frames": np.zeros((2, 36, 64, 3), np.float32)}, r"frame 0: expected uint8 \[H, W, 3\]"),
        ({"frames": [np.zeros((36, 64, 3), np.uint8), np.zeros((36, 62, 3), np.uint8)]}, "frame 1: size"),
        ({"frames": []}, "at least one frame"),
    ],
)
def test_bad_writes_raise_clear_errors(tmp_path, make_frames, kwargs, message):
    args = {"frames": make_frames(2), "actions": sample_actions(2), **kwargs}
    with pytest.raises(ValueError, match=message):
        write_episode(tmp_path / "ep", **args)
    assert not episode_complete(tmp_path / "ep")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.fixture
def episode_on_disk(tmp_path, make_frames):
    write_episode(tmp_path / "ep", make_frames(4), sample_actions(4), lossless=True)
    return episode_paths(tmp_path / "ep")


def test_bad_jsonl_line_names_file_and_line(episode_on_disk):
    _, jsonl, _ = episode_on_disk
    lines = jsonl.read_text().splitlines()
    jsonl.write_text("\n".join([*lines[:2], '{"keys": ["forward"], "camera": [0.0', *lines[3:]]) + "\n")
    with pytest.raises(EpisodeError, match=r"ep\.jsonl:3: not valid JSON") as caught:
        open_episode(jsonl)
    assert caught.value.line == 3 and caught.value.path == jsonl


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"keys": ["fly"], "camera": [0, 0]}', r"ep\.jsonl:2: unknown key name"),
        ('{"keys": [], "camera": [0, 999]}', r"ep\.jsonl:2: .*outside"),
        ('{"keys": [], "camera": ["1", 0]}', r"ep\.jsonl:2: 'camera' must be"),
        ('{"camera": [0, 0]}', r"ep\.jsonl:2: a native line needs"),
        ("[1, 2]", r"ep\.jsonl:2: a native line needs"),
    ],
)
def test_malformed_native_lines_name_the_line(episode_on_disk, line, message):
    _, jsonl, _ = episode_on_disk
    lines = jsonl.read_text().splitlines()
    lines[1] = line
    jsonl.write_text("\n".join(lines) + "\n")
    with pytest.raises(EpisodeError, match=message):
        open_episode(jsonl)


def test_frame_and_action_count_mismatches_are_errors(episode_on_disk):
    mp4, jsonl, marker = episode_on_disk
    lines = jsonl.read_text().splitlines()
    jsonl.write_text("\n".join(lines[:3]) + "\n")
    with pytest.raises(EpisodeError, match=r"ep\.jsonl: 3 lines, but ep\.json records 4 frames"):
        open_episode(mp4)
    jsonl.write_text("\n".join(lines) + "\n\n")  # trailing blank lines are fine
    assert len(open_episode(mp4)) == 4
    jsonl.write_text("\n".join([lines[0], "", *lines[1:]]) + "\n")
    with pytest.raises(EpisodeError, match=r"ep\.jsonl:2: empty line"):
        open_episode(mp4)
    jsonl.write_text("\n".join(lines) + "\n")
    record = json.loads(marker.read_text())
    marker.write_text(json.dumps({**record, "frame_count": 5}))
    with pytest.raises(EpisodeError, match=r"ep\.jsonl: 4 lines, but ep\.json records 5 frames"):
        open_episode(mp4)
    marker.write_text("{oops")
    with pytest.raises(EpisodeError, match=r"ep\.json: not valid JSON"):
        open_episode(mp4)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_video_is_an_episode_error(episode_on_disk, damage):
    mp4, _, _ = episode_on_disk
    data = mp4.read_bytes()
    damaged = {"garbage": b"\x00not a video\xff" * 64, "truncated": data[: len(data) // 2], "empty": b""}
    mp4.write_bytes(damaged[damage])
    with pytest.raises(EpisodeError, match=r"ep\.mp4: cannot open video"):
        open_episode(mp4)


def test_video_cut_short_is_an_error_not_a_short_read(tmp_path, make_frames):
    """A truncated recording whose header survives still reports the missing frames."""
    frames = make_frames(10)
    path = tmp_path / "fast.mp4"
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264rgb", rate=20)
        stream.width, stream.height, stream.pix_fmt, stream.options = 64, 36, "rgb24", {"crf": "0"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    assert probe_video(path).frame_count == 10  # the header still promises 10
    with pytest.raises(EpisodeError, match=r"fast\.mp4: video ends after \d frames; frame 9"):
        list(decode_frames(path, 0, 10))
    episode = Episode(path, sample_actions(10), 20.0)
    with pytest.raises(EpisodeError, match="video ends after"):
        list(episode.frames())


def test_seeking_reads_the_same_frames_as_decoding_in_order(tmp_path, make_frames):
    frames = make_frames(12)
    path = tmp_path / "v.mp4"
    info = write_video(path, frames, 20, lossless=True, keyframe_interval=4)
    assert (info.frame_count, info.width, info.height) == (12, 64, 36)
    for start, stop in [(0, 12), (1, 2), (3, 9), (4, 8), (7, 12), (11, 12)]:
        np.testing.assert_array_equal(np.stack(list(decode_frames(path, start, stop))), frames[start:stop])
    episode = Episode(path, sample_actions(9), 20.0, frame_offset=3)  # skips 3 leading frames
    np.testing.assert_array_equal(episode.read_frames(0, 9), frames[3:12])
    with pytest.raises(IndexError, match=r"frames \[5, 10\) outside an episode of 9"):
        episode.read_frames(5, 10)


def test_meta_and_extras_must_be_json_data(tmp_path, make_frames):
    with pytest.raises(ValueError, match="meta and extras must be JSON data"):
        write_episode(tmp_path / "ep", make_frames(2), sample_actions(2), meta={"when": object()})
    with pytest.raises(ValueError, match="meta and extras must be JSON data"):
        write_episode(tmp_path / "ep", make_frames(2), sample_actions(2), extras=[{}, {"pose": {1, 2}}])
    assert not list(tmp_path.iterdir())
