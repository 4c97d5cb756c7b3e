"""Optimizers and the learning-rate schedule of every run."""

from __future__ import annotations

import torch

from pixelplayer.config import Config
from pixelplayer.errors import PixelPlayerError


def param_groups(model: torch.nn.Module, cfg: Config) -> list[dict]:
    """The paper's learning rates: frame net slower than the sound net and synthesizer.

    train.projection_lr "sound" puts the frame net's last layer (`fc`, the projection to the K
    channels) in a group of its own at the sound net's rate, as the reference code does;
    "frame" leaves it in the frame group.
    """
    t = cfg.train
    lrs = {"frame": t.lr_frame, "sound": t.lr_sound, "synth": t.lr_synth, "projection": t.lr_sound}
    groups: dict[str, list] = {k: [] for k in lrs}
    for name, p in model.named_parameters():
        if not p.requires_grad:  # frozen: AMnet's stage 1 and motion embedding, a frame backbone
            continue
        part, _, rest = name.partition(".")
        key = next((k for k in ("frame", "sound", "synth") if part.startswith(k)), "sound")
        if key == "frame" and t.projection_lr == "sound" and rest.startswith("fc."):
            key = "projection"
        groups[key].append(p)
    return [{"params": ps, "lr": lrs[k], "name": k} for k, ps in groups.items() if ps]


def make_optimizer(model: torch.nn.Module, cfg: Config) -> torch.optim.Optimizer:
    """train.optimizer (sgd or adam) over `param_groups`: the mask models' recipe."""
    groups = param_groups(model, cfg)
    t = cfg.train
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, momentum=t.momentum, weight_decay=t.weight_decay)
    if t.optimizer == "adam":
        return torch.optim.Adam(groups, weight_decay=t.weight_decay)
    raise PixelPlayerError(f"unknown optimizer {t.optimizer!r}; use sgd or adam")


def adam(model: torch.nn.Module, cfg: Config) -> torch.optim.Optimizer:
    """Adam over every parameter at train.lr_sound: how AME and AV-MIML train, whatever
    train.optimizer says (their papers' optimizer)."""
    t = cfg.train
    return torch.optim.Adam(model.parameters(), lr=t.lr_sound, weight_decay=t.weight_decay)


def lr_factor(epoch: int, cfg: Config) -> float:
    """What the learning rates are multiplied by in `epoch` (0-based): x0.1 at each of
    train.lr_steps, and x lr_decay every lr_decay_every epochs."""
    t = cfg.train
    decay = t.lr_decay ** (epoch // t.lr_decay_every) if t.lr_decay_every else 1.0
    return 0.1 ** sum(epoch >= s for s in t.lr_steps) * decay


class Schedule:
    """Sets each group's learning rate for an epoch from the rate it was built with (a resumed
    optimizer's stored rates are already decayed: the schedule starts from the config's)."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: Config):
        self.optimizer, self.cfg = optimizer, cfg
        self.base = [g["lr"] for g in optimizer.param_groups]

    def set_epoch(self, epoch: int) -> None:
        factor = lr_factor(epoch, self.cfg)
        for g, lr in zip(self.optimizer.param_groups, self.base, strict=True):
            g["lr"] = lr * factor
