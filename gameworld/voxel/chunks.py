"""Chunks generated on demand, the player's edits, and the dense window the kernels work in.

The JIT kernels (physics, ray casting) read one contiguous array, the *window*: the
`(2R+1) x (2R+1)` chunks around the player's chunk, `uint8 [X, Z, Y]`. When the player walks into
another chunk the window is rebuilt around it from the chunk store (cheap: a few hundred KB copied).
Outside the window the world does not exist for the kernels; fog ends before its border.
"""

from __future__ import annotations

import numpy as np

from gameworld.voxel.terrain import CHUNK, HEIGHT, generate_chunk


class ChunkStore:
    """All chunks seen so far, generated from `(key, biome)` when first needed."""

    def __init__(self, key: int, biome: int, radius: int = 4):
        self.key = key
        self.biome = biome
        self.radius = radius
        self.chunks: dict[tuple[int, int], np.ndarray] = {}
        self.edited: set[tuple[int, int]] = set()
        side = (2 * radius + 1) * CHUNK
        self.window = np.zeros((side, side, HEIGHT), dtype=np.uint8)  # [X, Z, Y]
        self.center: tuple[int, int] | None = None
        self.origin = (0, 0)  # world x, z of window[0, 0]
        self.top = HEIGHT  # no block in the window at or above this y (lets sky rays stop early)

    def chunk(self, cx: int, cz: int) -> np.ndarray:
        found = self.chunks.get((cx, cz))
        if found is None:
            found = generate_chunk(self.key, self.biome, cx, cz)
            self.chunks[(cx, cz)] = found
        return found

    def recenter(self, x: float, z: float) -> None:
        """Make the window cover the chunks around world position (x, z) (no-op if it already does)."""
        center = (int(np.floor(x)) // CHUNK, int(np.floor(z)) // CHUNK)
        if center == self.center:
            return
        r = self.radius
        for i in range(-r, r + 1):
            for j in range(-r, r + 1):
                a, b = (i + r) * CHUNK, (j + r) * CHUNK
                self.window[a : a + CHUNK, b : b + CHUNK] = self.chunk(center[0] + i, center[1] + j)
        self.center = center
        self.origin = ((center[0] - r) * CHUNK, (center[1] - r) * CHUNK)
        occupied = np.flatnonzero(self.window.any(axis=(0, 1)))
        self.top = int(occupied[-1]) + 1 if occupied.size else 0
        self._forget_far(center)

    def _forget_far(self, center: tuple[int, int]) -> None:
        """Drop unedited chunks far from the player; they regenerate identically if needed again."""
        limit = 3 * self.radius
        far = [
            c for c in self.chunks
            if c not in self.edited and max(abs(c[0] - center[0]), abs(c[1] - center[1])) > limit
        ]
        for c in far:
            del self.chunks[c]

    def get(self, x: int, y: int, z: int) -> int:
        if not 0 <= y < HEIGHT:
            return 0
        return int(self.chunk(x // CHUNK, z // CHUNK)[x % CHUNK, z % CHUNK, y])

    def set(self, x: int, y: int, z: int, block: int) -> None:
        if not 0 <= y < HEIGHT:
            raise ValueError(f"block y={y} is outside the world (0..{HEIGHT - 1})")
        cx, cz = x // CHUNK, z // CHUNK
        self.chunk(cx, cz)[x % CHUNK, z % CHUNK, y] = block
        self.edited.add((cx, cz))
        wx, wz = x - self.origin[0], z - self.origin[1]
        if 0 <= wx < self.window.shape[0] and 0 <= wz < self.window.shape[1]:
            self.window[wx, wz, y] = block
            self.top = max(self.top, y + 1)
