"""Mask models (PixelPlayer, AMnet, any mask model in the registry) learn by mix-and-separate:
the loss of the predicted masks against those of the mixed sources; validation separates fixed
mixtures and scores SDR, SIR and SAR. The only task that trains under torchrun."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Subset

from pixelplayer import distributed, mixsep
from pixelplayer.config import Config
from pixelplayer.data.dataset import MixDataset, fixed_mixtures
from pixelplayer.data.index import read_index, resolve_index
from pixelplayer.errors import PixelPlayerError
from pixelplayer.metrics import bss_eval
from pixelplayer.precision import amp_dtype, autocast
from pixelplayer.run import Run
from pixelplayer.separation.separators import MaskModelSeparator, model_inputs
from pixelplayer.training.build import build_model
from pixelplayer.training.optim import make_optimizer
from pixelplayer.training.samplers import EpochItems, EpochShard, default_workers
from pixelplayer.training.task import Step, Task


class MaskTask(Task):
    """A mask model: mix-and-separate batches (MixDataset), best.pt by validation SDR."""

    title = "mask model"
    history_fields = [
        "epoch",
        "step",
        "train_loss",
        "skipped",  # batches left out for a non-finite loss (train.on_nan=skip)
        "val_sdr",
        "val_sir",
        "val_sar",
        "val_scored",  # validation estimates (one per source) that could be scored: not silent
        "lr",
        "minutes",
    ]
    val_figure, best_key = "val_sdr", "best_sdr"
    distributed = fine_tunes = True

    def __init__(
        self, cfg: Config, data: str | Path | None, device: torch.device, progress: bool = False
    ):
        super().__init__(cfg, data, device, progress)
        self.amp_dtype = amp_dtype(self.device, cfg.train.amp)
        self.pin = self.device.type == "cuda"
        # a grounding head (models/grounding.py) learns beside the masks: its loss in history
        self.grounded = cfg.model_kwargs.get("grounding") is not None
        if self.grounded:
            fields, at = MaskTask.history_fields, MaskTask.history_fields.index("train_loss") + 1
            self.history_fields = [*fields[:at], "train_grounding", *fields[at:]]

    def build(self) -> tuple[nn.Module, dict]:
        return build_model(self.cfg)

    def prepare(self, run: Run) -> None:
        cfg, t = self.cfg, self.cfg.train
        rank, world = distributed.rank(), distributed.world_size()
        val_clips = read_index(resolve_index(self.data, "val"))
        val_mix = fixed_mixtures(
            val_clips, cfg.sample, t.val_mixtures, t.seed, run.val_mixtures_path
        )
        if t.batch_size % world:
            raise PixelPlayerError(
                f"train.batch_size {t.batch_size} is the global batch and must divide evenly "
                f"over {world} processes; change it or --nproc_per_node"
            )
        local_batch = t.batch_size // world
        train_clips = read_index(resolve_index(self.data, "train"))
        train_set = MixDataset(
            train_clips, cfg.sample, length=t.epoch_size, seed=t.seed, train=True
        )
        val_set = MixDataset(val_clips, cfg.sample, mixtures=val_mix, train=False)
        if train_set.too_short and rank == 0:
            print(f"{train_set.too_short} training clips are shorter than one window and unused")
        workers = default_workers() if t.workers is None else t.workers
        loader_kw = dict(num_workers=workers, pin_memory=self.pin, persistent_workers=workers > 0)
        self.shard = EpochShard(len(train_set), rank, world)
        self.train_loader = DataLoader(
            EpochItems(train_set),
            batch_size=local_batch,
            sampler=self.shard,
            drop_last=True,
            **loader_kw,
        )
        # each rank scores val items rank, rank + W, ...; validate() sums the scores over ranks
        val_part = Subset(val_set, range(rank, len(val_set), world))
        self.val_loader = DataLoader(val_part, batch_size=local_batch, **loader_kw)

    def optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return make_optimizer(model, self.cfg)

    def steps_per_epoch(self) -> int:
        return len(self.train_loader)

    def batches(self, epoch: int) -> Iterable[dict]:
        self.shard.set_epoch(epoch)
        return self.train_loader

    def loss(self, net: nn.Module, batch: dict) -> Step:
        dev, spec = self.device, self.cfg.spec
        mix = batch["mix"].to(dev, non_blocking=self.pin)  # (B/W, L)
        audios = batch["audios"].to(dev, non_blocking=self.pin)  # (B/W, N, L)
        frames = batch["frames"].to(dev, non_blocking=self.pin)  # (B/W, N, 3, T, H, W)
        with autocast(dev, self.amp_dtype):
            _, mag = mixsep.network_input(mix, spec)
            masks, weight = mixsep.targets(audios, mag, spec)
            model = getattr(net, "module", net)
            extra = model_inputs(model, batch, dev)
            if self.grounded:
                heard = audios.abs().amax(-1) > 0  # (B/W, N): a clip shown silent is not
                classes = batch["classes"].to(dev)
                logits, ground = net(mag, frames, classes, heard, **extra)
            else:
                logits = net(mag, frames, **extra)  # (B/W, N, R, T)
        loss = mixsep.loss(logits.float(), masks, weight, spec)
        denominator = mixsep.loss_denominator(weight, spec)
        if not self.grounded:
            return Step(loss, denominator)
        loss = loss + model.grounding_weight * ground.float()
        return Step(loss, denominator, {"train_grounding": float(ground.detach())})

    def epoch_figures(self, steps: list[dict[str, float]]) -> dict[str, float]:
        # each step's train_loss is this rank's share of the global batch's: summed over ranks
        total = distributed.all_reduce([sum(s["train_loss"] for s in steps)])[0]
        figures = {"train_loss": total / len(steps)}
        if self.grounded:  # each rank's mean, averaged over ranks
            mean = sum(s["train_grounding"] for s in steps) / len(steps)
            world = distributed.world_size()
            figures["train_grounding"] = distributed.all_reduce([mean])[0] / world
        return figures

    def validate(self, model: nn.Module) -> tuple[dict[str, float], str]:
        t = self.cfg.train
        separator = MaskModelSeparator(model, self.cfg.spec, t.mask_threshold, self.device, t.amp)
        val = validate(separator, self.val_loader)
        entries = {f"val_{k}": v for k, v in val.items() if k != "estimates"}
        return entries, val_text(val)

    def best_text(self, value: float) -> str:
        return f"best validation SDR {value:.2f} dB"


def validate(separator: Callable[[dict], torch.Tensor], loader: DataLoader) -> dict[str, float]:
    """Mean SDR/SIR/SAR over the validation estimates (one per source) that can be scored, and
    their count ('scored' of 'estimates'); with none (e.g. every estimate silent early in
    training) the means are -inf.

    Under torchrun each rank's loader holds its share of the mixtures: sums and counts are
    added over ranks, so every rank gets the mean over all of them.
    """
    keys = ("sdr", "sir", "sar")
    sums, count, total = dict.fromkeys(keys, 0.0), 0, 0
    for batch in loader:
        est = separator(batch)
        m = bss_eval(batch["audios"], est)
        values = {k: np.asarray(m[k], np.float64).reshape(-1) for k in keys}
        ok = np.isfinite(values["sdr"])
        count += int(ok.sum())
        total += len(ok)
        for k in keys:
            sums[k] += float(values[k][ok].sum())
    *sums, count, total = distributed.all_reduce([*(sums[k] for k in keys), count, total])
    count, total = int(count), int(total)
    means = [s / count if count else -math.inf for s in sums]
    return {**dict(zip(keys, means, strict=True)), "scored": count, "estimates": total}


def val_text(val: dict) -> str:
    """The validation figures for the console line of an epoch."""
    if not val["scored"]:
        return (
            f", val SDR not measured (none of {val['estimates']} estimates could be scored: silent)"
        )
    unscored = val["estimates"] - val["scored"]
    return f", val SDR {val['sdr']:.2f} dB" + (
        f" ({unscored} silent, unscored)" if unscored else ""
    )
