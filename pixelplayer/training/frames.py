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


@torch.no_grad()
def predict(model: nn.Module, frames: np.ndarray, batch: int, device: torch.device) -> np.ndarray:
    """The class each frame shows, as `model` names it: (N, H, W, 3) uint8 -> (N,) indices."""
    model.eval()
    out = []
    for i in range(0, len(frames), batch):
        x = torch.from_numpy(np.ascontiguousarray(frames[i : i + batch])).to(device)
        out.append(model(x.permute(0, 3, 1, 2)).argmax(1).cpu().numpy())
    return np.concatenate(out) if out else np.empty(0, np.int64)


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

    @property
    def classes(self) -> list[str]:
        return list(self.cfg.model_kwargs.get("classes", CLASSES))

    def build(self) -> tuple[nn.Module, dict]:
        kwargs = {**self.cfg.model_kwargs, "classes": self.classes}
        return FrameClassifier(**kwargs), kwargs

    @functools.cached_property
    def stills(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(training frames, labels, validation frames, labels), drawn when first needed: a
        finished run that is called again draws none."""
        t, size = self.cfg.train, self.cfg.sample.frame_size
        draw = dict(classes=self.classes, size=size, workers=t.workers, progress=self.progress)
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

    def loss(self, net: nn.Module, batch: dict) -> Step:
        x = torch.from_numpy(batch["frames"]).to(self.device)
        logits = net(x.permute(0, 3, 1, 2))  # (B, C)
        labels = torch.from_numpy(batch["labels"]).to(self.device)
        acc = (logits.argmax(1) == labels).float().mean().item()
        return Step(nn.functional.cross_entropy(logits, labels), figures={"train_acc": acc})

    def validate(self, model: nn.Module) -> tuple[dict[str, float], str]:
        # eval mode until the loop sets train mode again at the next epoch
        frames, labels = self.stills[2:]
        named = predict(model, frames, self.cfg.train.batch_size, self.device)
        acc = float((named == labels).mean())
        return {"val_acc": acc}, f", val acc {acc:.3f}"
