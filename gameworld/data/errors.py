"""The one error type of the data layer: a data file that cannot be read as promised."""

from __future__ import annotations

from pathlib import Path


class EpisodeError(ValueError):
    """A malformed episode or shard file; the message names the file and, where known, the line.

    `path` and `line` (1-based, or None) are kept as attributes so tools can report or skip.
    """

    def __init__(self, path: str | Path, problem: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {problem}")
