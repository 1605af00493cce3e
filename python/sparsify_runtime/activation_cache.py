"""activation_cache.*: cached activations read back for training: shards of safetensors files,
memory-mapped, the next shard's pages requested from the OS while the current one is read.

A reader stands in for both the model and the rows of hooks.run: `rows(start, end)` and
`take(indices)` give token ids, `read(name, kind)` a hookpoint's activations for the batch
last asked for. Which shards, names and rows come from the TypeScript side (it parses and
checks the cache's index); this module only reads.
"""
from __future__ import annotations

import os
import time

import torch  # first: without torch, that is the error to report
import numpy as np

from .core import UserError, op


class Reader:
    """Rows [0, n) over shards, each {path, start, end} (rows of ctx_len tokens)."""

    def __init__(self, shards: list, ctx_len: int, device: str) -> None:
        self.shards = sorted(shards, key=lambda s: s["start"])
        self.starts = np.array([s["start"] for s in self.shards])
        self.ctx_len = ctx_len
        self.device = device
        self.open: dict[int, object] = {}
        self.batch: list[tuple[int, int, int]] = []  # (shard, first row, end row) pieces of the current batch
        self.prefetched: set[int] = set()
        # Seconds spent reading, converting and moving activations (the benchmark's overhead figure).
        self.seconds = 0.0

    def __len__(self) -> int:
        return self.shards[-1]["end"] if self.shards else 0

    def _file(self, i: int):
        from safetensors import safe_open

        f = self.open.get(i)
        if f is None:
            # Keep two shards open: the current one and the one a batch may straddle into.
            if len(self.open) >= 2:
                self.open.pop(next(iter(self.open)))
            try:
                f = safe_open(self.shards[i]["path"], framework="pt")
            except Exception as e:  # noqa: BLE001
                raise UserError(f"cannot read activation shard {self.shards[i]['path']}: {e}") from None
            self.open[i] = f
            self._prefetch(i + 1)
        return f

    def _prefetch(self, i: int) -> None:
        """Ask the OS to read the next shard ahead (reading overlaps the current shard's compute)."""
        if i >= len(self.shards) or i in self.prefetched or not hasattr(os, "posix_fadvise"):
            return
        self.prefetched.add(i)
        try:
            fd = os.open(self.shards[i]["path"], os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
            finally:
                os.close(fd)
        except OSError:
            pass

    def _pieces(self, rows: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Rows grouped by shard, in the order given: (shard, local row indices) runs."""
        shard = np.searchsorted(self.starts, rows, side="right") - 1
        out: list[tuple[int, np.ndarray]] = []
        i = 0
        while i < len(rows):
            j = i
            while j < len(rows) and shard[j] == shard[i]:
                j += 1
            out.append((int(shard[i]), rows[i:j] - self.shards[shard[i]]["start"]))
            i = j
        return out

    def has(self, name: str) -> bool:
        return bool(self.batch) and name in self._file(self.batch[0][0]).keys()

    def _gather(self, name: str, pieces, per_row: int) -> torch.Tensor:
        """The rows of `pieces` from tensor `name` (per_row entries of the first dim per row):
        a run of consecutive rows in one slice, scattered rows (a shuffled epoch) one by one."""
        parts = []
        for s, local in pieces:
            sl = self._file(s).get_slice(name)
            lo, hi = int(local[0]), int(local[-1]) + 1
            if hi - lo == len(local) and bool(np.all(np.diff(local) == 1)):
                parts.append(sl[lo * per_row : hi * per_row])
            else:
                parts.extend(sl[int(r) * per_row : (int(r) + 1) * per_row] for r in local)
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def take(self, indices) -> torch.Tensor:
        rows = np.asarray(indices, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise UserError(f"rows {rows.min()}..{rows.max()} are outside the cache's {len(self)} rows")
        t = time.perf_counter()
        self.batch = self._pieces(rows)
        ids = self._gather("input_ids", self.batch, 1).to(torch.int64)
        self.seconds += time.perf_counter() - t
        return ids

    def rows(self, start: int, end: int) -> torch.Tensor:
        return self.take(np.arange(start, end))

    def read(self, name: str) -> torch.Tensor:
        """Tensor `name` (`out/<hookpoint>`, `in/<hookpoint>`) for the current batch, shaped as the
        module gave it, [rows, ctx_len, width], on the device."""
        t = time.perf_counter()
        flat = self._gather(name, self.batch, self.ctx_len)
        out = flat.view(-1, self.ctx_len, flat.shape[-1]).to(self.device, non_blocking=True)
        self.seconds += time.perf_counter() - t
        return out


@op("activation_cache.open")
def open_reader(shards: list, ctx_len: int, device: str = "cpu") -> Reader:
    """A reader over activation shards [{path, start, end}] of rows of ctx_len tokens."""
    return Reader(shards, ctx_len, device)


@op("activation_cache.stats")
def stats(reader: Reader) -> dict:
    """Seconds the reader has spent reading, converting and moving activations."""
    return {"seconds": reader.seconds}
