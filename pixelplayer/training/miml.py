"""AV-MIML (pixelplayer.miml) in training: the KL-NMF bases of every training video, computed
once and kept in the run folder (bases.pt), the weak labels (labels.pt), then the MIML network
on the bags of bases; once it has trained, each class's bases go to dictionary.pt, which
separation reads. No validation: last.pt is the model."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property

import torch
import torch.nn as nn

from pixelplayer.data.index import Clip, read_index, resolve_index
from pixelplayer.errors import PixelPlayerError
from pixelplayer.miml import (
    DICTIONARY,
    ClassifierLabeler,
    MIMLNet,
    collect_bases,
    hinge_targets,
    load_file,
    make_labeler,
    options,
    relation_maps,
    video_bases,
    weak_labels,
)
from pixelplayer.models.registry import save_atomic
from pixelplayer.run import Run
from pixelplayer.training.task import Step, Task

BASES, LABELS = "bases.pt", "labels.pt"


class MIMLTask(Task):
    """AV-MIML: bags of NMF bases with weak labels; no validation, the dictionary at the end."""

    title = "AV-MIML"
    history_fields = ["epoch", "step", "train_loss", "train_acc", "lr", "minutes"]

    def check(self) -> None:
        options(self.cfg)

    @cached_property
    def opts(self) -> dict:
        return options(self.cfg)

    @cached_property
    def clips(self) -> list[Clip]:
        return read_index(resolve_index(self.data, "train"))

    @cached_property
    def classes(self) -> list[str]:
        return sorted({c.cls for c in self.clips})

    @cached_property
    def labeler(self) -> ClassifierLabeler | None:
        return make_labeler(self.classes, self.opts, self.device)

    def build(self) -> tuple[nn.Module, dict]:
        # a classifier labeler is read before the net is built: its own random initialisation
        # draws from the global generator first, so the net starts from the same weights
        # whether the labeler is needed now (a new run) or later (its labels, each call)
        _ = self.labeler
        kwargs = {
            "bins": self.cfg.spec.bins,  # the bases' frequency bins
            "labels": len(self.classes),
            "subconcepts": int(self.opts["subconcepts"]),
            "hidden": int(self.opts["hidden"]),
        }
        return MIMLNet(**kwargs), kwargs

    def prepare(self, run: Run) -> None:
        """The bases (cached in the run folder) and weak labels (written there) of the
        training videos."""
        bases = self.cached_bases(run).transpose(1, 2)  # (V, M, F)
        labels = weak_labels(self.clips, self.classes, self.cfg, self.opts, self.labeler)
        save_atomic(
            {"classes": self.classes, "videos": [c.video_id for c in self.clips], "labels": labels},
            run.file(LABELS),
        )
        self.use_bags(bases, labels)

    def cached_bases(self, run: Run) -> torch.Tensor:
        """(V, bins, M) bases of the training videos, from bases.pt when it was made with the
        same settings (they take minutes: a resumed run reuses them)."""
        cfg, opts = self.cfg, self.opts
        key = {
            "videos": [c.video_id for c in self.clips],
            "bases": int(opts["bases"]),
            "iters": int(opts["nmf_iters"]),
            "seconds": float(opts["nmf_seconds"]),
            "n_fft": cfg.spec.n_fft,
            "hop": cfg.spec.hop,
            "sr": cfg.sample.sr,
            "seed": cfg.train.seed,
        }
        path = run.file(BASES)
        if path.is_file():
            stored = load_file(path)
            if stored.get("key") == key:
                return stored["bases"]
        bases = video_bases(self.clips, cfg, opts, self.device, self.progress)
        save_atomic({"key": key, "bases": bases}, path)
        return bases

    def use_bags(self, bases: torch.Tensor, labels: torch.Tensor) -> None:
        """Train on (V, M, F) bags of bases and their (V, L) multi-hot labels."""
        self.bases, self.labels = bases, labels
        keep = labels.sum(1) > 0  # a video without any label teaches nothing
        self.x, self.y = bases[keep].to(self.device), labels[keep].to(self.device)
        if len(self.x) < 2:
            raise PixelPlayerError(
                f"{len(self.x)} training videos have a weak label; need at least 2"
            )
        self.targets = hinge_targets(self.y)
        # full batches only: BatchNorm needs more than one bag
        self.batch = max(2, min(self.cfg.train.batch_size, len(self.x)))

    def steps_per_epoch(self) -> int:
        return len(range(0, len(self.x) - self.batch + 1, self.batch))

    def batches(self, epoch: int) -> Iterator[dict]:
        gen = torch.Generator().manual_seed(self.cfg.train.seed * 100003 + epoch)  # on resume too
        order = torch.randperm(len(self.x), generator=gen).to(self.device)
        for i in range(0, len(self.x) - self.batch + 1, self.batch):
            idx = order[i : i + self.batch]
            yield {"bases": self.x[idx], "targets": self.targets[idx], "labels": self.y[idx]}

    def loss(self, net: nn.Module, batch: dict) -> Step:
        _, scores = net(batch["bases"])  # (B, L)
        loss = nn.functional.multilabel_margin_loss(scores, batch["targets"])
        top = scores.argmax(1)
        acc = batch["labels"].gather(1, top[:, None]).mean().item()  # the top label is right
        return Step(loss, figures={"train_acc": acc})

    def finish(self, model: nn.Module, run: Run) -> None:
        """dictionary.pt: each class's bases, and its exemplar (the bases of its first training
        video, the paper's control)."""
        rel = relation_maps(model, self.bases, self.device)
        found = collect_bases(rel, self.bases, self.labels, self.opts)
        first = {}
        for i, c in enumerate(self.clips):
            first.setdefault(c.cls, i)
        save_atomic(
            {
                "classes": self.classes,
                "bases": {c: b for c, b in zip(self.classes, found, strict=True)},
                "exemplar": {c: self.bases[first[c]] for c in self.classes},
            },
            run.file(DICTIONARY),
        )
        counts = ", ".join(f"{c} {len(b)}" for c, b in zip(self.classes, found, strict=True))
        print(f"bases per class: {counts}")
