"""A run's history: one row per epoch in history.csv, and the same figures in TensorBoard."""

from __future__ import annotations

import csv
from pathlib import Path


class History:
    """history.csv with the columns `fields` (header first), and TensorBoard logs in
    `tensorboard` when the package is installed. Only the process that writes the run opens one.
    """

    def __init__(self, path: Path, fields: list[str], tensorboard: Path | None = None):
        self.path, self.fields = path, fields
        self.writer = _tensorboard(tensorboard) if tensorboard is not None else None

    def log(self, row: dict) -> None:
        """Append one epoch's row; TensorBoard gets every figure of it against its step."""
        new = not self.path.is_file()
        with self.path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields)
            if new:
                w.writeheader()
            w.writerow({k: row.get(k, "") for k in self.fields})
        if self.writer is not None:
            for k, v in row.items():
                if k not in ("epoch", "step"):
                    self.writer.add_scalar(k, v, row["step"])
            self.writer.flush()

    def trim(self, epoch: int) -> None:
        """Keep the rows of epochs up to `epoch` (the checkpoint's), in the current columns:
        rows past it were written by a run killed before it saved last.pt."""
        if not self.path.is_file():
            return
        with self.path.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if (r.get("epoch") or "").isdigit()]
        kept = [r for r in rows if int(r["epoch"]) <= epoch]
        tmp = self.path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            w.writeheader()
            w.writerows({k: r.get(k) or "" for k in self.fields} for r in kept)
        tmp.replace(self.path)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _tensorboard(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(path))
