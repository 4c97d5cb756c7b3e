"""A run folder: the one place that knows its layout. Training writes it, every reader asks it.

  config.yaml        the resolved configuration (also stored inside every checkpoint)
  last.pt, best.pt   checkpoints (atomic writes); best by the model's validation figure
  history.csv        one row per epoch
  val_mixtures.json  the fixed validation mixtures
  init.json          with --init: which tensors came from the other run, and which did not
  tb/                TensorBoard logs (when tensorboard is installed)
  eval/              `pixelplayer eval`'s metrics, unless told otherwise
Models with more to keep (AV-MIML's bases and labels) name their files through `Run.file`.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import torch.nn as nn

from pixelplayer.config import Config, load_config, save_config
from pixelplayer.errors import PixelPlayerError
from pixelplayer.models.registry import load_model

CONFIG = "config.yaml"
LAST, BEST = "last.pt", "best.pt"
# what may change when a run is resumed: how long it goes on, not what it trains
RESUMABLE = {"epochs", "max_minutes", "workers", "on_nan"}


class Run:
    """A run folder, existing or to be made. `Run(path).config` reads config.yaml once."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"Run({str(self.folder)!r})"

    def file(self, name: str) -> Path:
        """A file of this run by name (e.g. "bases.pt"): the folder's layout stays here."""
        return self.folder / name

    @property
    def config_path(self) -> Path:
        return self.folder / CONFIG

    @property
    def history_path(self) -> Path:
        return self.folder / "history.csv"

    @property
    def val_mixtures_path(self) -> Path:
        return self.folder / "val_mixtures.json"

    @property
    def init_report_path(self) -> Path:
        return self.folder / "init.json"

    @property
    def tensorboard_dir(self) -> Path:
        return self.folder / "tb"

    @property
    def eval_dir(self) -> Path:
        return self.folder / "eval"

    def exists(self) -> bool:
        """A run has begun here: its config is written."""
        return self.config_path.is_file()

    @cached_property
    def config(self) -> Config:
        if not self.exists():
            raise PixelPlayerError(f"{self.folder}: not a run folder (no {CONFIG}); train it first")
        return load_config(self.config_path)

    def config_with(self, overrides: list[str]) -> Config:
        """The stored config with `--set` overrides applied (a resumed run's longer budget)."""
        return load_config(self.config_path, overrides)

    def save_config(self, cfg: Config) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        save_config(cfg, self.config_path)
        self.__dict__.pop("config", None)  # the next read sees what was written

    def start(self, cfg: Config | None) -> tuple[Config, bool]:
        """Begin the run with `cfg`, or reopen it -> (its config, whether last.pt resumes it).

        An existing run takes `cfg` only where it differs in RESUMABLE keys (a longer budget);
        any other difference is an error, and an existing run is never overwritten.
        """
        if self.exists():
            if cfg is not None:
                changed = config_changes(cfg, self.config)
                fixed = [k for k in changed if k.split(".")[-1] not in RESUMABLE]
                if fixed:
                    raise PixelPlayerError(
                        f"{self.folder} holds a run with another configuration (differs in: "
                        f"{', '.join(fixed)}); choose a new --out, or resume it with its own config"
                    )
                if changed:  # a longer budget for the same run
                    self.save_config(cfg)
            return (self.config if cfg is None else cfg), self.has_checkpoint(LAST)
        if cfg is None:
            raise PixelPlayerError(f"{self.folder} holds no run; give --config to start one")
        self.save_config(cfg)
        return cfg, False

    def checkpoint(self, name: str = BEST) -> Path:
        """The path of a checkpoint by name (best.pt, last.pt) or a path given as such."""
        return self.folder / name

    def has_checkpoint(self, name: str = BEST) -> bool:
        return self.checkpoint(name).is_file()

    def latest(self) -> Path:
        """best.pt, else last.pt: the weights another run starts from (`train --init`)."""
        for name in (BEST, LAST):
            if self.has_checkpoint(name):
                return self.checkpoint(name)
        raise PixelPlayerError(f"{self.folder}: the run has no checkpoint ({BEST} or {LAST})")

    def load_model(
        self, *classes: type[nn.Module], checkpoint: str = BEST, needed: str = ""
    ) -> tuple[nn.Module, dict[str, Any]]:
        """The model of one checkpoint, in eval mode, and the checkpoint; it must be one of
        `classes` when given (`needed` says in the error what the run was asked for)."""
        path = self.checkpoint(checkpoint)
        if not path.is_file():
            raise PixelPlayerError(f"{path}: no checkpoint; train that run first")
        model, ckpt = load_model(path)
        if classes and not isinstance(model, classes):
            wanted = " or ".join(c.__name__ for c in classes)
            raise PixelPlayerError(
                f"{path} holds a {type(model).__name__}, not a {wanted}"
                + (f"; {needed}" if needed else "")
            )
        return model, ckpt


def config_changes(new: Config, old: Config) -> list[str]:
    """The keys ("train.epochs", "model_kwargs") whose values differ between two configs."""
    a, b = new.to_dict(), old.to_dict()
    changed = []
    for key in a:
        if isinstance(a[key], dict) and isinstance(b.get(key), dict) and key != "model_kwargs":
            changed += [f"{key}.{k}" for k in a[key] if a[key][k] != b[key].get(k)]
        elif a[key] != b.get(key):
            changed.append(key)
    return changed


def as_run(run: str | Path | Run) -> Run:
    """A run folder given as a path, or a Run already (its config read at most once)."""
    return run if isinstance(run, Run) else Run(run)
