"""`pixelplayer train`: one training loop for every mask model, with resume and a time budget.

The run folder holds everything needed to reproduce and continue a run:
  config.yaml        the resolved configuration
  last.pt, best.pt   checkpoints (atomic writes); best is chosen by validation SDR
  history.csv        one row per epoch: loss, validation SDR/SIR/SAR, lr, time
  val_mixtures.json  the fixed validation mixtures
  init.json          with --init: which tensors came from the other run, and which did not
  tb/                TensorBoard logs (when tensorboard is installed)
A second call with the same folder resumes from last.pt. An existing run is never deleted.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib
import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset
from tqdm import tqdm

from pixelplayer import distributed, mixsep
from pixelplayer.config import Config, load_config, save_config
from pixelplayer.data.dataset import MixDataset, fixed_mixtures
from pixelplayer.data.index import read_index, resolve_index
from pixelplayer.errors import PixelPlayerError
from pixelplayer.metrics import bss_eval
from pixelplayer.models.registry import (
    _summary,
    build,
    get_class,
    load_checkpoint,
    load_weights,
    save_checkpoint,
)
from pixelplayer.precision import amp_dtype, autocast, fast_layout
from pixelplayer.separation.separators import MaskModelSeparator, model_inputs

# model -> (module with its `train_<model>` loop, name in messages)
OWN_LOOPS = {"miml": ("pixelplayer.miml", "AV-MIML"), "ame": ("pixelplayer.ame", "AME")}
HISTORY_FIELDS = [
    "epoch",
    "step",
    "train_loss",
    "skipped",  # batches left out for a non-finite loss (train.on_nan=skip)
    "val_sdr",
    "val_sir",
    "val_sar",
    "val_scored",  # validation estimates (one per source) that could be scored: not silent ones
    "lr",
    "minutes",
]


def pick_device(name: str | None = None) -> torch.device:
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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
        if not p.requires_grad:  # frozen parts (AMnet's stage 1 and motion embedding)
            continue
        part, _, rest = name.partition(".")
        key = next((k for k in ("frame", "sound", "synth") if part.startswith(k)), "sound")
        if key == "frame" and t.projection_lr == "sound" and rest.startswith("fc."):
            key = "projection"
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
    resolve = getattr(get_class(cfg.model), "kwargs_from_config", None)
    if resolve is not None:  # a model built on other runs completes its kwargs from the config
        kwargs = resolve(cfg, kwargs)
    model = build(cfg.model, **kwargs)
    sound_net = getattr(getattr(model, "appearance", model), "sound_net", None)
    if sound_net is not None:
        _check_spectrogram_size(cfg, sound_net.levels)
    # the weights now live in the state dict; a checkpoint must not need the file again
    kwargs.get("frame", {}).pop("pretrained", None)
    return model, getattr(model, "checkpoint_kwargs", kwargs)


def init_weights(model: torch.nn.Module, source: str | Path, model_name: str) -> dict:
    """Start `model` from another run's weights, to fine-tune it: copy each tensor of the
    checkpoint (RUN's best.pt, else last.pt, or a checkpoint file) that matches by name and
    shape. -> the report: what was loaded, and the names that were not.

    Frozen parts (AMnet's stages) keep the weights of the runs the config names for them.
    """
    path = Path(source)
    if path.is_dir():
        found = [path / n for n in ("best.pt", "last.pt") if (path / n).is_file()]
        if not found:
            raise PixelPlayerError(
                f"cannot init from {source}: the run has no checkpoint (best.pt or last.pt)"
            )
        path = found[0]
    elif not path.exists():
        raise PixelPlayerError(f"cannot init from {source}: no such run folder or checkpoint")
    ckpt = load_checkpoint(path)
    sd, own = ckpt["state_dict"], model.state_dict()
    frozen = tuple(
        f"{name}."
        for name, m in model.named_modules()
        if name and (ps := list(m.parameters())) and not any(p.requires_grad for p in ps)
    )
    kept = [k for k in own if k.startswith(frozen)]
    free = [k for k in own if not k.startswith(frozen)]
    loaded = [k for k in free if k in sd and sd[k].shape == own[k].shape]
    if not loaded:  # surely the wrong run
        raise PixelPlayerError(
            f"cannot init from {path}: none of its {len(sd)} tensors fits this run's model by "
            f"name and shape (it holds a {ckpt['model']!r} model, this run trains {model_name!r})"
        )
    model.load_state_dict({k: sd[k] for k in loaded}, strict=False)
    return {
        "source": str(source),
        "checkpoint": str(path.resolve()),
        "source_model": ckpt["model"],
        # the source run may train on: its step and weights say which ones were used
        "source_step": ckpt.get("train_state", {}).get("step"),
        "source_weights": weights_digest(sd),
        "loaded": len(loaded),
        "tensors": len(own),
        "missing_in_source": [k for k in free if k not in sd],
        "other_shape": {
            k: {"model": list(own[k].shape), "source": list(sd[k].shape)}
            for k in free
            if k in sd and sd[k].shape != own[k].shape
        },
        "not_in_model": [k for k in sd if k not in own],
        "frozen_kept": kept,
    }


def init_summary(report: dict) -> str:
    """A few lines for the console: the counts, then the names that did not load (capped)."""
    lines = [
        f"init from {report['checkpoint']} ({report['source_model']}): {report['loaded']} of "
        f"{report['tensors']} tensors loaded"
        + (f", {len(report['frozen_kept'])} frozen kept" if report["frozen_kept"] else "")
    ]
    for label, key in (
        ("missing in the source", "missing_in_source"),
        ("other shape", "other_shape"),
        ("not in the model", "not_in_model"),
    ):
        if report[key]:
            lines.append("  " + _summary(label, list(report[key])))
    return "\n".join(lines)


def _check_spectrogram_size(cfg: Config, levels: int) -> None:
    """The U-Net halves the spectrogram `levels` times: both sides must divide by 2**levels."""
    step, hop = 2**levels, cfg.spec.hop
    rows = cfg.spec.freq_rows if cfg.spec.log_freq else cfg.spec.n_fft // 2 + 1
    cols = 1 + cfg.sample.audio_len // hop  # STFT frames of one window
    if rows % step:
        raise PixelPlayerError(
            f"the U-Net's {levels} levels need spectrogram rows that divide by {step}, not "
            f"{rows}; use spec.log_freq with spec.freq_rows={step * max(1, round(rows / step))}"
        )
    if cols % step:
        fit = hop * step * max(1, round(cols / step)) - 1
        raise PixelPlayerError(
            f"the U-Net's {levels} levels need a window of STFT frames that divides by {step}, "
            f"but sample.audio_len {cfg.sample.audio_len} with hop {hop} gives {cols}; try "
            f"sample.audio_len={fit}"
        )


def default_workers() -> int:
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def validate(separator: MaskModelSeparator, loader: DataLoader) -> dict[str, float]:
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


# what may change when a run is resumed: how long it goes on, not what it trains
RESUMABLE = {"epochs", "max_minutes", "workers", "on_nan"}


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


class EpochShard(Sampler):
    """This process's share of one epoch's mixtures, as (epoch, item) pairs.

    Rank r of W takes items r, r + W, ...: local batch k of every rank together is exactly the
    global batch k of a single process (items kB .. kB + B - 1). The epoch travels with each
    index because DataLoader workers hold their own copy of the dataset: setting the epoch on
    the main process's copy would never reach persistent workers.
    """

    def __init__(self, length: int, rank: int = 0, world: int = 1):
        self.rank, self.world = rank, world
        self.count = length // world  # the same on every rank, or DDP steps fall out of step
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for i in range(self.count):
            yield self.epoch, self.rank + i * self.world


class EpochItems(Dataset):
    """A MixDataset indexed by (epoch, item): the mixture that item draws in that epoch."""

    def __init__(self, data: MixDataset):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, i = key
        self.data.set_epoch(epoch)
        return self.data[i]


def _global_share(loss: torch.Tensor, weight: torch.Tensor) -> tuple[float, bool]:
    """-> (factor, finite everywhere). The loss is a sum over the local batch divided by
    `weight.sum()` (the weights, or `mixsep.loss_denominator`'s count of bins); `loss * factor`,
    averaged over ranks by DDP, is that of the whole global batch, so a run on W processes
    takes the same steps as one process with the same global batch. The non-finite check rides
    on the same all_reduce, so every rank skips (or stops on) the same batches."""
    finite = bool(torch.isfinite(loss))
    world = distributed.world_size()
    if world == 1:
        return 1.0, finite
    local = float(weight.sum())
    total, bad = distributed.all_reduce([local, float(not finite)])
    return local * world / total, bad == 0


def train(
    cfg: Config | None,
    data: str | Path,
    out: str | Path,
    device: str | None = None,
    progress: bool = True,
) -> dict:
    """Train (or resume) the run in `out` on the prepared data; returns the final summary.

    Under torchrun (RANK/WORLD_SIZE set) each process trains a DistributedDataParallel replica
    on its share of every batch; rank 0 writes the run folder.
    """
    out = Path(out)
    stored = out / "config.yaml"
    model = cfg.model if cfg is not None else load_config(stored).model if stored.is_file() else ""
    if model in OWN_LOOPS:  # models that learn something other than masks: their own loop
        module, title = OWN_LOOPS[model]
        if cfg is not None and cfg.init:
            raise PixelPlayerError(
                f"{title} trains in its own loop, from scratch: init (--init) is for the mask "
                "models (pixelplayer, amnet)"
            )
        if distributed.env_world()[1] > 1:
            raise PixelPlayerError(f"{title} trains in one process; run it without torchrun")
        loop = getattr(importlib.import_module(module), f"train_{model}")
        return loop(cfg, data, out, device, progress)
    dev = distributed.init_from_env(device)
    try:
        summary = _train_masks(cfg, data, out, dev, progress)
        distributed.barrier()  # every rank done before any tears down gloo (else it aborts)
        return summary
    finally:
        distributed.cleanup()


def _train_masks(
    cfg: Config | None, data: str | Path, out: Path, dev: torch.device, progress: bool
) -> dict:
    rank, world = distributed.rank(), distributed.world_size()
    main = rank == 0
    val_clips = read_index(resolve_index(data, "val"))
    fresh, init = None, None
    if cfg is not None and not (out / "config.yaml").is_file():
        # built before the run folder is written: a config that cannot build its model (or an
        # init run that does not fit it) must not leave a run behind (seeded as below, so the
        # weights are the same)
        torch.manual_seed(cfg.train.seed)
        fresh = build_model(cfg)
        if cfg.init:
            init = init_weights(fresh[0], cfg.init, cfg.model)
    with distributed.main_first():  # rank 0 writes config.yaml and val_mixtures.json
        cfg, resuming = prepare_run(cfg, out)
        val_mix = fixed_mixtures(
            val_clips, cfg.sample, cfg.train.val_mixtures, cfg.train.seed, out / "val_mixtures.json"
        )
    t = cfg.train
    if t.on_nan not in ("stop", "skip"):
        raise PixelPlayerError(f"train.on_nan is {t.on_nan!r}; use stop or skip")
    if t.batch_size % world:
        raise PixelPlayerError(
            f"train.batch_size {t.batch_size} is the global batch and must divide evenly over "
            f"{world} processes; change it or --nproc_per_node"
        )
    local_batch = t.batch_size // world
    torch.manual_seed(t.seed)  # the same initial weights on every rank
    np.random.seed(t.seed)

    train_clips = read_index(resolve_index(data, "train"))
    train_set = MixDataset(train_clips, cfg.sample, length=t.epoch_size, seed=t.seed, train=True)
    val_set = MixDataset(val_clips, cfg.sample, mixtures=val_mix, train=False)
    if train_set.too_short and main:
        print(f"{train_set.too_short} training clips are shorter than one window and unused")

    workers = default_workers() if t.workers is None else t.workers
    pin = dev.type == "cuda"
    loader_kw = dict(num_workers=workers, pin_memory=pin, persistent_workers=workers > 0)
    shard = EpochShard(len(train_set), rank, world)
    train_loader = DataLoader(
        EpochItems(train_set), batch_size=local_batch, sampler=shard, drop_last=True, **loader_kw
    )
    # each rank scores val items rank, rank + W, ...; validate() sums the scores over ranks
    val_part = Subset(val_set, range(rank, len(val_set), world))
    val_loader = DataLoader(val_part, batch_size=local_batch, **loader_kw)

    if fresh is None:
        torch.manual_seed(t.seed)
        fresh = build_model(cfg)
    model, kwargs = fresh
    if cfg.init and not resuming and init is None:  # a resumed run has its own weights
        init = init_weights(model, cfg.init, cfg.model)
    if init is not None and main:
        print(init_summary(init) + f"\nfull report: {out / 'init.json'}")
        (out / "init.json").write_text(json.dumps(init, indent=1))
    if world > 1 and dev.type == "cuda":
        # BatchNorm statistics over the global batch; SyncBatchNorm has no CPU (gloo) kernel,
        # so on CPU each replica normalises by its local batch (see distributed.average_buffers)
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    fast_layout(model.to(dev))
    optimizer = make_optimizer(model, cfg)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    dtype = amp_dtype(dev, t.amp)
    # float16 needs loss scaling against underflow; bfloat16 has float32's range
    scaler = torch.amp.GradScaler(dev.type, enabled=dtype == torch.float16)

    state = {"epoch": 0, "step": 0, "best_sdr": -math.inf, "seconds": 0.0, "skipped": 0}
    if resuming:  # every rank loads the same checkpoint
        ckpt = load_checkpoint(out / "last.pt")
        load_weights(model, ckpt["state_dict"], out / "last.pt")
        optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler") and scaler.is_enabled():
            scaler.load_state_dict(ckpt["scaler"])
        state.update(ckpt["train_state"])
        if main:
            # rows past the checkpoint were written by a run killed before it saved last.pt
            trim_history(out / "history.csv", state["epoch"])
            print(f"resuming {out} at epoch {state['epoch']} (step {state['step']})")
    if not distributed.same_everywhere([state["epoch"], state["step"]]):
        raise PixelPlayerError(
            f"the processes resumed from different checkpoints; {out} must be on storage "
            "that every node sees"
        )
    net = model
    if world > 1:
        ids = [dev.index] if dev.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    writer = _tensorboard(out / "tb") if main else None
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
            scaler=scaler.state_dict(),
            train_state=dict(state),
            config=cfg.to_dict(),
        )

    while state["epoch"] < t.epochs and state["seconds"] < budget:
        epoch = state["epoch"]
        for g, lr in zip(optimizer.param_groups, base_lrs, strict=True):
            g["lr"] = lr * lr_factor(epoch, cfg)
        shard.set_epoch(epoch)
        net.train()
        loss_sum, batches, skipped = 0.0, 0, 0
        bar = tqdm(
            total=steps_per_epoch * t.batch_size,
            desc=f"epoch {epoch + 1}/{t.epochs}",
            unit="mix",
            disable=not (progress and main),
            leave=False,
        )
        started = time.perf_counter()
        for batch in train_loader:
            batches += 1
            mix = batch["mix"].to(dev, non_blocking=pin)
            audios = batch["audios"].to(dev, non_blocking=pin)
            frames = batch["frames"].to(dev, non_blocking=pin)
            # a skipped batch must not leave its statistics in the BatchNorm buffers either
            kept = [b.clone() for b in model.buffers()] if t.on_nan == "skip" else []
            with autocast(dev, dtype):
                spec, mag = mixsep.network_input(mix, cfg.spec)
                masks, weight = mixsep.targets(audios, mag, cfg.spec)
                extra = model_inputs(model, batch, dev)
                logits = net(mag, frames, **extra)  # (B/W, N, R, T)
            loss = mixsep.loss(logits.float(), masks, weight, cfg.spec)
            share, finite = _global_share(loss, mixsep.loss_denominator(weight, cfg.spec))
            if finite:
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss * share).backward()
                scaler.step(optimizer)
                scaler.update()
                state["step"] += 1
                loss_sum += loss.item() * share / world  # this rank's part of the global mean
                bar.set_postfix(loss=f"{loss.item():.4f}")
            elif t.on_nan == "stop":
                value = loss.item() if not torch.isfinite(loss) else "not finite on another rank"
                raise PixelPlayerError(
                    f"loss became {value} at step {state['step'] + 1} (epoch {epoch + 1}, batch "
                    f"{batches}); lower the learning rate, or set train.on_nan=skip"
                )
            else:
                skipped += 1
                for b, k in zip(model.buffers(), kept, strict=True):
                    b.copy_(k)
            bar.update(t.batch_size)
            if budget < math.inf and distributed.any_rank(
                state["seconds"] + time.perf_counter() - started >= budget
            ):
                break
        bar.close()
        if batches and skipped == batches:
            raise PixelPlayerError(
                f"every batch of epoch {epoch + 1} ({batches}) had a non-finite loss; "
                "lower the learning rate"
            )
        # one figure per epoch for every rank: the mean over ranks, the slowest rank's time
        loss_sum = distributed.all_reduce([loss_sum])[0]
        elapsed = distributed.all_reduce([time.perf_counter() - started], op="max")[0]
        state["seconds"] += elapsed
        state["skipped"] += skipped
        state["epoch"] = epoch + 1
        row = {
            "epoch": state["epoch"],
            "step": state["step"],
            "train_loss": loss_sum / (batches - skipped),
            "skipped": skipped,
            "lr": optimizer.param_groups[0]["lr"],
            "minutes": state["seconds"] / 60,
        }
        distributed.average_buffers(model)  # one set of BatchNorm statistics for every replica
        last = state["epoch"] >= t.epochs or state["seconds"] >= budget
        if state["epoch"] % t.val_every == 0 or last:
            separator = MaskModelSeparator(model, cfg.spec, t.mask_threshold, dev, t.amp)
            val = validate(separator, val_loader)
            row.update({f"val_{k}": v for k, v in val.items() if k != "estimates"})
            if val["sdr"] > state["best_sdr"] or not (out / "best.pt").is_file():
                state["best_sdr"] = val["sdr"]
                if main:
                    save("best.pt")
        if main:
            # history first: a kill before last.pt is written leaves a row that resume trims
            log_history(out / "history.csv", row, writer=writer)
            save("last.pt")
            print(
                f"epoch {row['epoch']}: loss {row['train_loss']:.4f}"
                + (_val_text(val) if "val_sdr" in row else "")
                + (f", {skipped} of {batches} batches skipped (non-finite loss)" if skipped else "")
                + f" ({row['minutes']:.1f} min)"
            )
        distributed.barrier()  # nobody runs ahead of rank 0's checkpoint
    if writer is not None:
        writer.close()
    digest = weights_digest(model)
    if not distributed.same_everywhere([int(digest[:12], 16)]):  # 48 bits: exact as a float
        raise PixelPlayerError("the processes ended with different weights; please report this")
    return {"out": str(out), "weights": digest, **state}


def _val_text(val: dict) -> str:
    if not val["scored"]:
        return (
            f", val SDR not measured (none of {val['estimates']} estimates could be scored: silent)"
        )
    unscored = val["estimates"] - val["scored"]
    return f", val SDR {val['sdr']:.2f} dB" + (
        f" ({unscored} silent, unscored)" if unscored else ""
    )


def weights_digest(model: torch.nn.Module | dict) -> str:
    """SHA-256 of a model's state dict (names and values, whatever their memory layout)."""
    sd = model.state_dict() if isinstance(model, torch.nn.Module) else model
    h = hashlib.sha256()
    for name, t in sd.items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


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


def trim_history(path: Path, epoch: int, fields: list[str] = HISTORY_FIELDS) -> None:
    """Keep the rows of epochs up to `epoch` (the checkpoint's), in the current columns."""
    if not path.is_file():
        return
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if (r.get("epoch") or "").isdigit()]
    kept = [r for r in rows if int(r["epoch"]) <= epoch]
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows({k: r.get(k) or "" for k in fields} for r in kept)
    tmp.replace(path)


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
    p.add_argument(
        "--config",
        help="a YAML config file, or a preset's name: pixelplayer-cpu (a 2-core CPU), "
        "pixelplayer-paper (the paper's sizes, a GPU), ame, amnet, miml",
    )
    p.add_argument(
        "--model",
        choices=sorted(MODEL_PRESETS),
        help="use this model's preset when --config is not given: pixelplayer-cpu, miml "
        "(AV-MIML), ame (AMnet's audio-motion embedding), amnet (AMnet's motion stage)",
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
    p.add_argument(
        "--init",
        metavar="RUN",
        help="fine-tune: a new run starts from RUN's weights (its best.pt, else last.pt, or a "
        "checkpoint file), copying the tensors that match by name and shape (report: init.json)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


MODEL_PRESETS = {  # --model: the preset it starts from
    "ame": "ame",
    "amnet": "amnet",
    "miml": "miml",
    "pixelplayer": "pixelplayer-cpu",
}


def run(args: argparse.Namespace) -> int:
    from pixelplayer.checks import device as check_device

    check_device(args.device)  # before any work: a device this build lacks is one line
    overrides = list(args.set)
    if args.model and not args.config and not (Path(args.out) / "config.yaml").is_file():
        args.config = MODEL_PRESETS[args.model]
    if args.frame_weights:
        overrides.append(f"frame_weights={args.frame_weights}")
    if args.init:  # quoted: the override's value is YAML, and a path must stay a string
        overrides.append(f"init={json.dumps(args.init)}")
    cfg = None
    if args.config or overrides:
        if not args.config and (Path(args.out) / "config.yaml").is_file():
            cfg = load_config(Path(args.out) / "config.yaml", overrides)
        else:
            cfg = load_config(args.config, overrides)
    summary = train(cfg, args.data, args.out, device=args.device, progress=not args.no_progress)
    if distributed.env_world()[0] != 0:  # under torchrun, rank 0 speaks for all
        return 0
    if math.isnan(summary["best_sdr"]):  # AV-MIML has no validation separation
        print(f"run folder: {summary['out']}")
    else:
        print(f"run folder: {summary['out']} (best validation SDR {summary['best_sdr']:.2f} dB)")
    return 0
