"""What the training loop asks of a kind of model: a Task builds the model, serves an epoch's
batches, computes the loss of one batch, and validates. Everything else happens once, in the
loop (pixelplayer.training.loop), for every kind: the run folder, resume, the time budget,
checkpoints, history, torchrun, non-finite losses.

Kinds: `MaskTask` (masks.py: PixelPlayer, AMnet and any mask model in the registry),
`AMETask` (ame.py: AMnet's audio-motion embedding), `MIMLTask` (miml.py: AV-MIML).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn

from pixelplayer.config import Config
from pixelplayer.run import Run
from pixelplayer.training.optim import adam


class Step(NamedTuple):
    """One batch's loss, as the loop needs it."""

    loss: torch.Tensor  # () what backward() starts from
    # what the loss divides its sum by (`mixsep.loss_denominator`): under torchrun it weighs
    # each process's share of the global batch; None for a plain mean over equal shares
    denominator: torch.Tensor | None = None
    figures: dict[str, float] = {}  # per-batch figures for history besides the loss


class Task:
    """One kind of model in training. The defaults serve the single-process tasks."""

    title = "model"  # its name in messages
    history_fields = ["epoch", "step", "train_loss", "lr", "minutes"]  # history.csv's columns
    val_figure: str | None = None  # the history column that picks best.pt (None: no best.pt)
    best_key: str | None = None  # where train_state keeps the best value of it
    distributed = False  # trains under torchrun
    fine_tunes = False  # starts from another run's weights with --init
    amp_dtype: torch.dtype | None = None  # autocast dtype of the forward pass

    def __init__(
        self, cfg: Config, data: str | Path | None, device: torch.device, progress: bool = False
    ):
        self.cfg, self.data, self.device, self.progress = cfg, data, torch.device(device), progress

    def check(self) -> None:
        """Raise for a config that cannot train, before a run folder is written."""

    def build(self) -> tuple[nn.Module, dict]:
        """-> (a new model, the kwargs its checkpoints store). Seeded by the loop."""
        raise NotImplementedError

    def prepare(self, run: Run) -> None:
        """Read the data and write the files every process reads (under torchrun, rank 0
        first)."""

    def optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return adam(model, self.cfg)

    def steps_per_epoch(self) -> int:
        raise NotImplementedError

    def batches(self, epoch: int) -> Iterable[dict]:
        """The batches of `epoch` (0-based): the same ones whenever the epoch is run."""
        raise NotImplementedError

    def loss(self, net: nn.Module, batch: dict) -> Step:
        """The loss of one batch through `net` (the model, or its DDP wrapper)."""
        raise NotImplementedError

    def epoch_figures(self, steps: list[dict[str, float]]) -> dict[str, float]:
        """The epoch's figures from its steps' (those with a finite loss): their means."""
        return {k: float(np.mean([s[k] for s in steps])) for k in steps[0]}

    def validate(self, model: nn.Module) -> tuple[dict[str, float], str]:
        """-> (history entries, among them `val_figure`; the words for the console)."""
        raise NotImplementedError

    def best_text(self, value: float) -> str:
        """The best validation figure in words, for the run's summary."""
        return f"best {self.val_figure} {value:.3f}"

    def finish(self, model: nn.Module, run: Run) -> None:
        """Anything the run keeps besides the checkpoints, once training has ended."""
