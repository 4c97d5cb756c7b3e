"""`pixelplayer train`: one training loop for every mask model, with resume and a time budget.

The run folder holds everything needed to reproduce and continue a run:
  config.yaml        the resolved configuration
  last.pt, best.pt   checkpoints (atomic writes); best is chosen by validation SDR
  history.csv        one row per epoch: loss, validation SDR/SIR/SAR, lr, time
  val_mixtures.json  the fixed validation mixtures
  tb/                TensorBoard logs (when tensorboard is installed)
A second call with the same folder resumes from last.pt. An existing run is never deleted.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from pixelplayer import mixsep
from pixelplayer.config import Config, load_config, save_config
from pixelplayer.data.dataset import MixDataset, fixed_mixtures
from pixelplayer.data.index import read_index, resolve_index
from pixelplayer.errors import PixelPlayerError
from pixelplayer.metrics import bss_eval
from pixelplayer.models.registry import build, load_checkpoint, save_checkpoint
from pixelplayer.precision import amp_dtype, autocast, fast_layout
from pixelplayer.separators import MaskModelSeparator

HISTORY_FIELDS = ["epoch", "step", "train_loss", "val_sdr", "val_sir", "val_sar", "lr", "minutes"]


def pick_device(name: str | None = None) -> torch.device:
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def param_groups(model: torch.nn.Module, cfg: Config) -> list[dict]:
    """The paper's learning rates: frame net slower than the sound net and synthesizer."""
    lrs = {"frame": cfg.train.lr_frame, "sound": cfg.train.lr_sound, "synth": cfg.train.lr_synth}
    groups: dict[str, list] = {k: [] for k in lrs}
    for name, p in model.named_parameters():
        part = name.split(".")[0]
        key = next((k for k in lrs if part.startswith(k)), "sound")
        groups[key].append(p)
    return [{"params": ps, "lr": lrs[k], "name": k} for k, ps in groups.items() if ps]


def make_optimizer(model: torch.nn.Module, cfg: Config) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg)
    t = cfg.train
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, momentum=t.momentum, weight_decay=t.weight_decay)
    if t.optimizer == "adam":
        return torch.optim.Adam(groups, weight_decay=t.weight_decay)
    raise PixelPlayerError(f"unknown optimizer {t.optimizer!r}; use sgd or adam")


def lr_factor(epoch: int, cfg: Config) -> float:
    t = cfg.train
    decay = t.lr_decay ** (epoch // t.lr_decay_every) if t.lr_decay_every else 1.0
    return 0.1 ** sum(epoch >= s for s in t.lr_steps) * decay


def build_model(cfg: Config) -> tuple[torch.nn.Module, dict]:
    kwargs = dict(cfg.model_kwargs)
    if cfg.frame_weights:
        kwargs.setdefault("frame", {})
        kwargs["frame"] = {**kwargs["frame"], "pretrained": cfg.frame_weights}
    model = build(cfg.model, **kwargs)
    # the weights now live in the state dict; a checkpoint must not need the file again
    kwargs.get("frame", {}).pop("pretrained", None)
    return model, kwargs


def default_workers() -> int:
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def validate(separator: MaskModelSeparator, loader: DataLoader) -> dict[str, float]:
    """Mean SDR/SIR/SAR over the validation mixtures (items that cannot be scored are left out)."""
    scores = {"sdr": [], "sir": [], "sar": []}
    for batch in loader:
        est = separator(batch)
        m = bss_eval(batch["audios"], est)
        for k in scores:
            scores[k].append(np.asarray(m[k]).reshape(-1))
    values = {k: np.concatenate(v) for k, v in scores.items()}
    ok = np.isfinite(values["sdr"])
    if not ok.any():  # e.g. every estimate silent early in training
        return {k: -math.inf for k in values}
    return {k: float(np.mean(v[ok])) for k, v in values.items()}


# what may change when a run is resumed: how long it goes on, not what it trains
RESUMABLE = {"epochs", "max_minutes", "workers"}


def _config_changes(new: Config, old: Config) -> list[str]:
    a, b = new.to_dict(), old.to_dict()
    changed = []
    for key in a:
        if isinstance(a[key], dict) and isinstance(b.get(key), dict) and key != "model_kwargs":
            changed += [f"{key}.{k}" for k in a[key] if a[key][k] != b[key].get(k)]
        elif a[key] != b.get(key):
            changed.append(key)
    return changed


def prepare_run(cfg: Config | None, out: Path) -> tuple[Config, bool]:
    """Create or reopen the run folder; returns (config, resuming)."""
    stored = out / "config.yaml"
    if stored.is_file():
        old = load_config(stored)
        if cfg is not None:
            changed = _config_changes(cfg, old)
            fixed = [k for k in changed if k.split(".")[-1] not in RESUMABLE]
            if fixed:
                raise PixelPlayerError(
                    f"{out} holds a run with another configuration (differs in: "
                    f"{', '.join(fixed)}); choose a new --out, or resume it with its own config"
                )
            if changed:  # a longer budget for the same run
                save_config(cfg, stored)
                old = cfg
        return old, (out / "last.pt").is_file()
    if cfg is None:
        raise PixelPlayerError(f"{out} holds no run; give --config to start one")
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, stored)
    return cfg, False


def train(
    cfg: Config | None,
    data: str | Path,
    out: str | Path,
    device: str | None = None,
    progress: bool = True,
) -> dict:
    """Train (or resume) the run in `out` on the prepared data; returns the final summary."""
    out = Path(out)
    stored = out / "config.yaml"
    model = cfg.model if cfg is not None else load_config(stored).model if stored.is_file() else ""
    if model == "miml":  # AV-MIML learns NMF bases, not masks: its own loop
        from pixelplayer.miml import train_miml

        return train_miml(cfg, data, out, device, progress)
    cfg, resuming = prepare_run(cfg, out)
    t = cfg.train
    dev = pick_device(device)
    torch.manual_seed(t.seed)
    np.random.seed(t.seed)

    train_clips = read_index(resolve_index(data, "train"))
    val_clips = read_index(resolve_index(data, "val"))
    train_set = MixDataset(train_clips, cfg.sample, length=t.epoch_size, seed=t.seed, train=True)
    val_mix = fixed_mixtures(
        val_clips, cfg.sample, t.val_mixtures, t.seed, out / "val_mixtures.json"
    )
    val_set = MixDataset(val_clips, cfg.sample, mixtures=val_mix, train=False)
    if train_set.too_short:
        print(f"{train_set.too_short} training clips are shorter than one window and unused")

    workers = default_workers() if t.workers is None else t.workers
    pin = dev.type == "cuda"
    loader_kw = dict(num_workers=workers, pin_memory=pin, persistent_workers=workers > 0)
    train_loader = DataLoader(
        train_set, batch_size=t.batch_size, shuffle=False, drop_last=True, **loader_kw
    )
    val_loader = DataLoader(val_set, batch_size=t.batch_size, **loader_kw)

    model, kwargs = build_model(cfg)
    fast_layout(model.to(dev))
    optimizer = make_optimizer(model, cfg)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    dtype = amp_dtype(dev, t.amp)
    # float16 needs loss scaling against underflow; bfloat16 has float32's range
    scaler = torch.amp.GradScaler(dev.type, enabled=dtype == torch.float16)

    state = {"epoch": 0, "step": 0, "best_sdr": -math.inf, "seconds": 0.0}
    if resuming:
        ckpt = load_checkpoint(out / "last.pt")
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        state.update(ckpt["train_state"])
        print(f"resuming {out} at epoch {state['epoch']} (step {state['step']})")

    writer = _tensorboard(out / "tb")
    budget = t.max_minutes * 60 if t.max_minutes else math.inf
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise PixelPlayerError(f"epoch_size {t.epoch_size} is smaller than batch {t.batch_size}")

    def save(name: str) -> None:
        save_checkpoint(
            out / name,
            model,
            cfg.model,
            kwargs,
            optimizer=optimizer.state_dict(),
            train_state=dict(state),
            config=cfg.to_dict(),
        )

    while state["epoch"] < t.epochs and state["seconds"] < budget:
        epoch = state["epoch"]
        for g, lr in zip(optimizer.param_groups, base_lrs, strict=True):
            g["lr"] = lr * lr_factor(epoch, cfg)
        train_set.set_epoch(epoch)
        model.train()
        losses = []
        bar = tqdm(
            total=steps_per_epoch * t.batch_size,
            desc=f"epoch {epoch + 1}/{t.epochs}",
            unit="mix",
            disable=not progress,
            leave=False,
        )
        started = time.perf_counter()
        for batch in train_loader:
            mix, audios = batch["mix"].to(dev), batch["audios"].to(dev)
            frames = batch["frames"].to(dev, non_blocking=pin)
            with autocast(dev, dtype):
                spec, mag = mixsep.network_input(mix, cfg.spec)
                masks, weight = mixsep.targets(audios, mag, cfg.spec)
                logits = model(mag, frames)
            loss = mixsep.loss(logits.float(), masks, weight, cfg.spec)
            if not torch.isfinite(loss):
                raise PixelPlayerError(
                    f"loss became {loss.item()} at step {state['step']}; lower the learning rate"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if t.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            state["step"] += 1
            losses.append(loss.item())
            bar.update(t.batch_size)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
            if state["seconds"] + time.perf_counter() - started >= budget:
                break
        bar.close()
        state["seconds"] += time.perf_counter() - started
        state["epoch"] = epoch + 1
        row = {
            "epoch": state["epoch"],
            "step": state["step"],
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            "lr": optimizer.param_groups[0]["lr"],
            "minutes": state["seconds"] / 60,
        }
        last = state["epoch"] >= t.epochs or state["seconds"] >= budget
        if state["epoch"] % t.val_every == 0 or last:
            separator = MaskModelSeparator(model, cfg.spec, t.mask_threshold, dev, t.amp)
            val = validate(separator, val_loader)
            row.update({f"val_{k}": v for k, v in val.items()})
            if val["sdr"] > state["best_sdr"] or not (out / "best.pt").is_file():
                state["best_sdr"] = val["sdr"]
                save("best.pt")
        save("last.pt")
        log_history(out / "history.csv", row, writer=writer)
        print(
            f"epoch {row['epoch']}: loss {row['train_loss']:.4f}"
            + (f", val SDR {row['val_sdr']:.2f} dB" if "val_sdr" in row else "")
            + f" ({row['minutes']:.1f} min)"
        )
    if writer is not None:
        writer.close()
    return {"out": str(out), **state}


def _tensorboard(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(path))


def log_history(path: Path, row: dict, fields: list[str] = HISTORY_FIELDS, writer=None) -> None:
    """Append one epoch's row to history.csv (header first), and to TensorBoard when given."""
    new = not path.is_file()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        if new:
            w.writeheader()
        w.writerow({k: row.get(k, "") for k in fields})
    if writer is not None:
        for k, v in row.items():
            if k not in ("epoch", "step"):
                writer.add_scalar(k, v, row["step"])
        writer.flush()


def add_arguments(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model by mix-and-separate (resumes an existing run)",
        description=(
            "Train a model on prepared data by mix-and-separate. The run folder gets the "
            "resolved config, checkpoints (last.pt, best.pt by validation SDR), history.csv and "
            "TensorBoard logs. Calling again with the same --out resumes the run."
        ),
    )
    p.add_argument("--config", help="YAML preset, e.g. configs/pixelplayer-cpu.yaml")
    p.add_argument(
        "--model",
        choices=sorted(MODEL_PRESETS),
        help="use this model's preset when --config is not given (miml: configs/miml.yaml)",
    )
    p.add_argument("--data", required=True, help="prepared folder (with train.csv, val.csv)")
    p.add_argument("--out", required=True, help="run folder (created, or resumed)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value, e.g. --set train.max_minutes=5 (repeatable)",
    )
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--frame-weights", help="ImageNet ResNet-18 state dict (torchvision keys)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


MODEL_PRESETS = {"miml": "miml.yaml", "pixelplayer": "pixelplayer-cpu.yaml"}
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def run(args: argparse.Namespace) -> int:
    overrides = list(args.set)
    if args.model and not args.config and not (Path(args.out) / "config.yaml").is_file():
        args.config = str(CONFIG_DIR / MODEL_PRESETS[args.model])
    if args.frame_weights:
        overrides.append(f"frame_weights={args.frame_weights}")
    cfg = None
    if args.config or overrides:
        if not args.config and (Path(args.out) / "config.yaml").is_file():
            cfg = load_config(Path(args.out) / "config.yaml", overrides)
        else:
            cfg = load_config(args.config, overrides)
    summary = train(cfg, args.data, args.out, device=args.device, progress=not args.no_progress)
    if math.isnan(summary["best_sdr"]):  # AV-MIML has no validation separation
        print(f"run folder: {summary['out']}")
    else:
        print(f"run folder: {summary['out']} (best validation SDR {summary['best_sdr']:.2f} dB)")
    return 0
