"""The frame net learns what instruments look like from stills of the generated world
(data/synth/stills.py): a classifier over its pooled features names the instrument each still
shows. A mask model then starts from its `frame_net.*` (`train --init`), as the paper starts
from ImageNet weights. It needs no prepared data: the stills are drawn when training first
needs them."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn as nn

from pixelplayer.data.synth.instruments import CLASSES
from pixelplayer.data.synth.stills import render_stills
from pixelplayer.errors import PixelPlayerError
from pixelplayer.models.frame import FrameClassifier
from pixelplayer.training.build import check_model_kwargs
from pixelplayer.training.task import Step, Task

TRAIN_PART, VAL_PART = 0, 1  # the stills' parts (render_stills)


class FrameTask(Task):
    """Stills, each seen once per epoch (mirrored at random); best.pt by validation
    accuracy. train.epoch_size stills are drawn once and reused every epoch: drawing them is
    slower than a training step."""

    title = "frame net"
    history_fields = ["epoch", "step", "train_loss", "train_acc", "val_acc", "lr", "minutes"]
    val_figure, best_key = "val_acc", "best_acc"
    needs_data = False

    def check(self) -> None:
        check_model_kwargs("frames", self.cfg.model_kwargs, ["classes", "k", "frame"])
        unknown = sorted(set(self.cfg.model_kwargs.get("classes", [])) - set(CLASSES))
        if unknown:
            raise PixelPlayerError(
                f"model_kwargs.classes: no class {unknown[0]!r}; known: {', '.join(CLASSES)}"
            )

    def build(self) -> tuple[nn.Module, dict]:
        kwargs = {"classes": list(CLASSES), **self.cfg.model_kwargs}
        return FrameClassifier(**kwargs), kwargs

    @functools.cached_property
    def stills(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(training frames, labels, validation frames, labels), drawn when first needed: a
        finished run that is called again draws none."""
        t, size = self.cfg.train, self.cfg.sample.frame_size
        classes = self.cfg.model_kwargs.get("classes", list(CLASSES))
        draw = dict(classes=classes, size=size, workers=t.workers, progress=self.progress)
        train = render_stills(t.epoch_size, t.seed, TRAIN_PART, **draw)
        return (*train, *render_stills(t.val_mixtures, t.seed, VAL_PART, **draw))

    def steps_per_epoch(self) -> int:
        return self.cfg.train.epoch_size // self.cfg.train.batch_size

    def batches(self, epoch: int) -> Iterator[dict]:
        t = self.cfg.train
        rng = np.random.default_rng((t.seed, epoch))  # a resumed epoch draws the same batches
        frames, labels = self.stills[:2]
        order = rng.permutation(len(frames))
        mirror = rng.random(len(order)) < 0.5
        for k in range(self.steps_per_epoch()):
            idx = order[k * t.batch_size : (k + 1) * t.batch_size]
            batch = frames[idx]  # (B, H, W, 3) uint8, a copy
            batch[mirror[idx]] = batch[mirror[idx], :, ::-1]
            yield {"frames": batch, "labels": labels[idx]}

    def _logits(self, net: nn.Module, frames: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        return net(x.permute(0, 3, 1, 2))  # (B, C)

    def loss(self, net: nn.Module, batch: dict) -> Step:
        logits = self._logits(net, batch["frames"])
        labels = torch.from_numpy(batch["labels"]).to(self.device)
        acc = (logits.argmax(1) == labels).float().mean().item()
        return Step(nn.functional.cross_entropy(logits, labels), figures={"train_acc": acc})

    @torch.no_grad()
    def validate(self, model: nn.Module) -> tuple[dict[str, float], str]:
        bs = self.cfg.train.batch_size
        model.eval()  # the loop sets train mode again at the next epoch
        frames, labels = self.stills[2:]
        hits = sum(
            int((self._logits(model, frames[i : i + bs]).argmax(1).cpu().numpy()
                 == labels[i : i + bs]).sum())
            for i in range(0, len(frames), bs)
        )  # fmt: skip
        acc = hits / len(frames)
        return {"val_acc": acc}, f", val acc {acc:.3f}"
