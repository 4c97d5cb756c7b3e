"""AMnet's audio-motion embedding learns from triplets cut from one clip (pixelplayer.ame): its
motion, the aligned audio, the audio shifted by at least `min_shift`; validation scores the
triplet accuracy of a fixed list of validation trials."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch.nn as nn

from pixelplayer.ame import (
    aligned_wins,
    draw_triplet,
    embed_batch,
    fixed_trials,
    load_split,
    make_batch,
    model_kwargs,
    options,
    shift_frames,
    triplet_accuracy,
    triplet_loss,
)
from pixelplayer.models.ame import AudioMotionEmbedding
from pixelplayer.run import Run
from pixelplayer.training.task import Step, Task


class AMETask(Task):
    """The audio-motion embedding: triplet batches, best.pt by validation triplet accuracy."""

    title = "AME"
    history_fields = ["epoch", "step", "train_loss", "train_acc", "val_acc", "lr", "minutes"]
    val_figure, best_key = "val_acc", "best_acc"

    def check(self) -> None:
        options(self.cfg)

    def build(self) -> tuple[nn.Module, dict]:
        kwargs = model_kwargs(self.cfg, options(self.cfg))
        return AudioMotionEmbedding(**kwargs), kwargs

    def prepare(self, run: Run) -> None:
        """Decode the train and val clips into memory; draw the fixed validation trials."""
        cfg, opts = self.cfg, options(self.cfg)
        s = cfg.sample
        self.margin = opts["margin"]
        self.shift = shift_frames(opts["min_shift"], s.fps)
        train_clips, self.train_arrays = load_split(self.data, "train", cfg, opts, self.progress)
        val_clips, self.val_arrays = load_split(self.data, "val", cfg, opts, self.progress)
        self.train_lengths = [c.num_frames for c in train_clips]
        lengths = [c.num_frames for c in val_clips]
        self.val_trials = fixed_trials(
            lengths, s.num_frames, self.shift, cfg.train.val_mixtures, cfg.train.seed
        )

    def steps_per_epoch(self) -> int:
        return self.cfg.train.epoch_size // self.cfg.train.batch_size

    def batches(self, epoch: int) -> Iterator[dict]:
        # seeded by (seed, epoch, item), as MixDataset: a resumed run draws the same triplets
        t, s = self.cfg.train, self.cfg.sample
        bs = t.batch_size
        for k in range(self.steps_per_epoch()):
            rngs = [np.random.default_rng((t.seed, epoch, k * bs + j)) for j in range(bs)]
            triplets = [draw_triplet(r, self.train_lengths, s.num_frames, self.shift) for r in rngs]
            yield make_batch(self.train_arrays, triplets, self.cfg, rngs)

    def loss(self, net: nn.Module, batch: dict) -> Step:
        anchor, pos, neg = embed_batch(net, batch, self.device)  # (B, D, T) each
        loss = triplet_loss(anchor, pos, neg, self.margin)
        acc = aligned_wins(anchor, pos, neg).float().mean().item()
        return Step(loss, figures={"train_acc": acc})

    def validate(self, model: nn.Module) -> tuple[dict[str, float], str]:
        bs = self.cfg.train.batch_size
        acc = triplet_accuracy(model, self.val_arrays, self.val_trials, self.cfg, self.device, bs)
        return {"val_acc": acc}, f", val acc {acc:.3f}"

    def best_text(self, value: float) -> str:
        return f"best validation triplet accuracy {value:.3f}"
