"""Episodes on disk (native, VPT, GF-Minecraft, MineRL v0), latent shards, and training clips.

    from gameworld.data import open_episode, write_episode
    ep = open_episode("runs/ep_0001")          # any supported format, detected from its files
    ep.actions, ep.fps, ep.meta, ep.extras     # one action per frame: a[t] made f[t], a[0] null
    for frame in ep.frames(): ...              # uint8 [H, W, 3]
"""

from gameworld.data.clips import ClipDataset
from gameworld.data.episode import Episode, episode_complete, write_episode
from gameworld.data.errors import EpisodeError
from gameworld.data.formats import detect_format, find_episodes, open_episode
from gameworld.data.shards import LatentShard, ShardSet, read_shard, write_shard

__all__ = [
    "ClipDataset",
    "Episode",
    "EpisodeError",
    "LatentShard",
    "ShardSet",
    "detect_format",
    "episode_complete",
    "find_episodes",
    "open_episode",
    "read_shard",
    "write_episode",
    "write_shard",
]
