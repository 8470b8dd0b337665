"""`BatchStream`: endless batches from a map-style dataset, in its own order, resumable exactly.

The dataset decides the order of an epoch (seeded shuffle, this rank's share: see
`gameworld.data.ClipDataset` and its `set_epoch`); the stream walks it in batches, moves on to
the next epoch when one runs out, and remembers `(epoch, batch)` so that a resumed job picks up
with the very next batch.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

from torch.utils.data import DataLoader, Dataset


def leave_stop_signals_to_the_main_process(worker_id: int) -> None:
    """A loader worker outlives the SIGINT / SIGTERM sent to the whole process group (Ctrl-C, a
    scheduler), so the main process can finish its step and checkpoint; a second SIGTERM (the main
    process stopping its workers) ends it."""
    def end_on_the_next(signum, frame) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, end_on_the_next)


class BatchStream:
    def __init__(
        self, dataset: Dataset, batch_size: int, num_workers: int = 0, name: str = "dataset"
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if len(dataset) < batch_size:
            raise ValueError(f"{name}: {len(dataset)} item(s) for this process, fewer than one batch "
                             f"of {batch_size}; use more data, shorter clips or a smaller batch")
        self.dataset, self.batch_size, self.num_workers = dataset, batch_size, num_workers
        self.epoch, self.batch = 0, 0
        self._iterator: Iterator | None = None
        self.last_indices: list[int] = []

    def batches_per_epoch(self) -> int:
        return len(self.dataset) // self.batch_size

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
        self._iterator = None

    def _start_epoch(self) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)
        if self.batch >= self.batches_per_epoch():
            self.epoch, self.batch = self.epoch + 1, 0
            return self._start_epoch()
        first, count = self.batch * self.batch_size, self.batches_per_epoch() * self.batch_size
        indices = range(first, count)
        batches = [list(indices[i : i + self.batch_size]) for i in range(0, len(indices), self.batch_size)]
        loader = DataLoader(self.dataset, batch_sampler=batches, num_workers=self.num_workers,
                            worker_init_fn=leave_stop_signals_to_the_main_process)
        self._iterator = zip(batches, loader, strict=True)

    def close(self) -> None:
        """Stop the loader workers (the position is kept: the next batch starts them again)."""
        self._iterator = None

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self):
        if self._iterator is None:
            self._start_epoch()
        try:
            self.last_indices, batch = next(self._iterator)
        except StopIteration:
            self.epoch, self.batch, self._iterator = self.epoch + 1, 0, None
            return next(self)
        self.batch += 1
        return batch
