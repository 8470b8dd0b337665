"""ClipDataset over episodes and over latent shards; shard files themselves."""

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch.utils.data import DataLoader

from gameworld.actions import Action, ActionSpace, CameraEncoding
from gameworld.data import ClipDataset, EpisodeError, ShardSet, read_shard, write_episode, write_shard

SPACE = ActionSpace.minecraft()


def episode_actions(n: int, episode: int) -> list[Action]:
    """Each frame's yaw encodes (episode, t), so a misaligned clip cannot pass for an aligned one."""
    return [Action.null()] + [Action.of("forward", camera=(0.0, episode + 0.1 * t)) for t in range(1, n)]


@pytest.fixture
def episodes(tmp_path, make_frames):
    """Three lossless native episodes of 7, 5 and 3 frames: (directory, frames, actions) per episode."""
    made = []
    for number, length in enumerate((7, 5, 3)):
        frames = make_frames(length, height=18, width=32, seed=number)
        actions = episode_actions(length, number)
        write_episode(tmp_path / "eps" / f"ep_{number}", frames, actions, lossless=True)
        made.append((frames, actions))
    return tmp_path / "eps", made


def test_episode_clips_are_aligned_and_never_straddle(episodes):
    root, made = episodes
    dataset = ClipDataset(root, clip_len=3, stride=1, seed=0)
    assert len(dataset) == 5 + 3 + 1
    seen = set()
    for i in range(len(dataset)):
        frames, actions = dataset[i]
        episode, start = dataset.locate(i)
        truth_frames, truth_actions = made[episode]
        assert start + 3 <= len(truth_frames)
        assert frames.dtype == torch.uint8 and frames.shape == (3, 18, 32, 3)
        np.testing.assert_array_equal(frames.numpy(), truth_frames[start : start + 3])
        torch.testing.assert_close(actions, SPACE.encode(truth_actions[start : start + 3]))
        seen.add((episode, start))
    assert seen == {(0, s) for s in range(5)} | {(1, s) for s in range(3)} | {(2, 0)}


def order(dataset: ClipDataset) -> list[tuple[int, int]]:
    return [dataset.locate(i) for i in range(len(dataset))]


def test_shuffling_is_deterministic_per_seed_and_epoch(episodes):
    root, _ = episodes
    a, b = ClipDataset(root, 3, stride=1, seed=5), ClipDataset(root, 3, stride=1, seed=5)
    assert order(a) == order(b)
    first = order(a)
    a.set_epoch(1)
    assert order(a) != first and sorted(order(a)) == sorted(first)
    a.set_epoch(0)
    assert order(a) == first
    assert order(ClipDataset(root, 3, stride=1, seed=6)) != first
    in_order = ClipDataset(root, 3, stride=1, shuffle=False)
    assert order(in_order) == sorted(first)


def test_ranks_get_disjoint_equal_shares(episodes):
    root, _ = episodes
    ranks = [ClipDataset(root, 3, stride=1, seed=1, rank=r, world_size=2) for r in range(2)]
    shares = [set(order(d)) for d in ranks]
    assert len(ranks[0]) == len(ranks[1]) == 4  # 9 clips: one left over this epoch
    assert not shares[0] & shares[1]
    whole = ClipDataset(root, 3, stride=1, seed=1)
    assert shares[0] | shares[1] == {whole.locate(i) for i in range(8)}
    for dataset in ranks:
        dataset.set_epoch(3)
    assert not set(order(ranks[0])) & set(order(ranks[1]))


def test_clip_dataset_errors(episodes, tmp_path, make_frames):
    root, _ = episodes
    with pytest.raises(ValueError, match="no episode .* has 8 consecutive frames"):
        ClipDataset(root, clip_len=8)
    with pytest.raises(ValueError, match="rank 2 is outside world_size 2"):
        ClipDataset(root, 2, rank=2, world_size=2)
    arcade = ActionSpace(("fire",), camera=None, name="arcade")
    write_episode(tmp_path / "eps" / "other", make_frames(3, 18, 32), [Action.null()] * 3,
                  meta={"action_space": arcade})
    with pytest.raises(ValueError, match="action space 'arcade' differs"):
        ClipDataset(root, 2)
    with pytest.raises(IndexError):
        ClipDataset(root, 2, space=SPACE)[100]


def write_shards(directory, rows_per_shard, episode_index, frame_index, seed=0, space=SPACE):
    """Random latents and encoded actions for the given rows, cut into shards; returns the full tensors."""
    generator = torch.Generator().manual_seed(seed)
    n = len(frame_index)
    latents = torch.randn(n, 4, 2, 3, generator=generator).half()
    actions = space.encode([Action(camera=(0.0, float(f % 10))) for f in frame_index])
    episode_index, frame_index = torch.tensor(episode_index), torch.tensor(frame_index)
    start = 0
    for number, size in enumerate(rows_per_shard):
        rows = slice(start, start + size)
        write_shard(directory / f"shard_{number:03d}.safetensors", latents[rows], actions[rows],
                    episode_index[rows], frame_index[rows], {"action_space": space.to_dict(), "fps": 20})
        start += size
    return latents, actions


def test_shard_round_trip(tmp_path):
    latents = torch.randn(5, 4, 2, 3)  # float32 in, float16 stored
    actions = SPACE.encode([Action.null()] * 5)
    path = write_shard(tmp_path / "s.safetensors", latents, actions, np.arange(5) * 0 + 7, np.arange(5),
                       {"action_space": SPACE.to_dict(), "tokenizer": "tiny"})
    assert [p.name for p in tmp_path.iterdir()] == ["s.safetensors"]
    shard = read_shard(path)
    assert len(shard) == 5 and shard.latents.dtype == torch.float16
    torch.testing.assert_close(shard.latents, latents.half())
    torch.testing.assert_close(shard.actions, actions)
    assert shard.episode_index.tolist() == [7] * 5 and shard.frame_index.tolist() == list(range(5))
    assert shard.episode_index.dtype == torch.int64
    assert shard.meta == {"action_space": SPACE.to_dict(), "tokenizer": "tiny"}


def test_latent_clips_follow_episodes_across_shards_and_gaps(tmp_path):
    # Episode 0: frames 0..8 across shards 0 and 1. Episode 1: frames 0..4. Episode 2: 0..2, then 5..7.
    episode_index = [0] * 9 + [1] * 5 + [2] * 6
    frame_index = list(range(9)) + list(range(5)) + [0, 1, 2, 5, 6, 7]
    latents, actions = write_shards(tmp_path, [6, 8, 6], episode_index, frame_index)
    shards = ShardSet(tmp_path)
    assert len(shards) == 20 and shards.runs() == [(0, 9), (9, 14), (14, 17), (17, 20)]
    dataset = ClipDataset(tmp_path, clip_len=3, stride=1, seed=0)
    assert len(dataset) == 7 + 3 + 1 + 1
    seen = set()
    for i in range(len(dataset)):
        clip_latents, clip_actions = dataset[i]
        episode, first_frame = dataset.locate(i)
        row = next(r for r in range(20) if (episode_index[r], frame_index[r]) == (episode, first_frame))
        assert frame_index[row + 2] == first_frame + 2 and episode_index[row + 2] == episode  # no straddling
        assert clip_latents.dtype == torch.float16 and clip_latents.shape == (3, 4, 2, 3)
        torch.testing.assert_close(clip_latents, latents[row : row + 3])
        torch.testing.assert_close(clip_actions, actions[row : row + 3])
        seen.add((episode, first_frame))
    assert (0, 4) in seen and (0, 6) in seen  # clips that cross the shard boundary at row 6
    assert (2, 1) not in seen and (2, 2) not in seen  # nothing spans episode 2's gap
    batches = list(DataLoader(dataset, batch_size=4, shuffle=False))
    assert [b[0].shape for b in batches] == [(4, 3, 4, 2, 3)] * 3


def test_bad_shards_are_errors(tmp_path):
    path, latents = tmp_path / "x.safetensors", torch.zeros(5, 1, 1, 1)
    index = torch.zeros(5, dtype=torch.int64)
    with pytest.raises(ValueError, match="actions has 4 rows, latents 5"):
        write_shard(path, latents, torch.zeros(4, 46), index, index, {})
    with pytest.raises(ValueError, match="episode_index must be integer"):
        write_shard(path, latents, torch.zeros(5, 46), torch.zeros(5), index, {})
    with pytest.raises(ValueError, match="latents must have 4 dimensions"):
        write_shard(path, torch.zeros(5, 1, 1), torch.zeros(5, 46), index, index, {})
    assert not list(tmp_path.iterdir())
    (tmp_path / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(EpisodeError, match=r"broken\.safetensors: cannot read"):
        read_shard(tmp_path / "broken.safetensors")
    save_file({"latents": torch.zeros(1, 1, 1, 1)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(EpisodeError, match=r"foreign\.safetensors: not a gameworld latent shard"):
        read_shard(tmp_path / "foreign.safetensors")


def test_shards_of_one_set_must_agree(tmp_path):
    mineworld = ActionSpace.minecraft(camera=CameraEncoding(90.0, 21, 11.49))
    write_shards(tmp_path / "spaces", [3], [0, 0, 0], [0, 1, 2])
    write_shard(tmp_path / "spaces" / "shard_001.safetensors", torch.zeros(3, 4, 2, 3),
                mineworld.encode([Action.null()] * 3), torch.ones(3, dtype=torch.int64), torch.arange(3),
                {"action_space": mineworld.to_dict()})
    with pytest.raises(EpisodeError, match=r"shard_001\.safetensors: action space differs"):
        ShardSet(tmp_path / "spaces")
    write_shards(tmp_path / "shapes", [3], [0, 0, 0], [0, 1, 2])
    write_shard(tmp_path / "shapes" / "shard_001.safetensors", torch.zeros(3, 4, 4, 4),
                SPACE.encode([Action.null()] * 3), torch.ones(3, dtype=torch.int64), torch.arange(3),
                {"action_space": SPACE.to_dict()})
    with pytest.raises(EpisodeError, match=r"shard_001\.safetensors: latent shape \[4, 4, 4\] differs"):
        ShardSet(tmp_path / "shapes")
    write_shards(tmp_path / "one", [3], [0, 0, 0], [0, 1, 2])
    with pytest.raises(ValueError, match="shards were encoded with the action space 'minecraft'"):
        ClipDataset(tmp_path / "one", 2, space=mineworld)
