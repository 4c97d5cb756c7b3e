"""The training loop of every model, with resume, a time budget and torchrun.

`train(cfg, data, out)` trains the run in folder `out` (pixelplayer.run.Run: config.yaml,
last.pt, best.pt, history.csv, tb/ ...) on prepared data; a second call with the same folder
resumes from last.pt, an existing run is never overwritten. What differs between models is a
Task (task.py): PixelPlayer and AMnet (masks.py), the AME (ame.py), AV-MIML (miml.py). The loop
does the rest once: seeding, building the model before the run folder is written, --init,
checkpoints (last.pt every epoch, best.pt by the task's validation figure), history.csv and
TensorBoard, train.max_minutes, train.on_nan, mixed precision and DDP.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from pixelplayer import distributed
from pixelplayer.config import Config
from pixelplayer.errors import PixelPlayerError
from pixelplayer.models.registry import (
    load_checkpoint,
    load_weights,
    save_checkpoint,
    weights_digest,
)
from pixelplayer.precision import fast_layout
from pixelplayer.run import BEST, LAST, Run
from pixelplayer.training.ame import AMETask
from pixelplayer.training.history import History
from pixelplayer.training.init import init_summary, init_weights
from pixelplayer.training.masks import MaskTask
from pixelplayer.training.miml import MIMLTask
from pixelplayer.training.optim import Schedule
from pixelplayer.training.task import Task

# config `model` -> its task; every other model is a mask model (models.registry)
TASKS: dict[str, type[Task]] = {"ame": AMETask, "miml": MIMLTask}


def task_class(model: str) -> type[Task]:
    return TASKS.get(model, MaskTask)


def train(
    cfg: Config | None,
    data: str | Path,
    out: str | Path,
    device: str | None = None,
    progress: bool = True,
) -> dict:
    """Train (or resume) the run in `out` on the prepared data; `cfg` None reopens the run.
    -> the summary: out, weights (their digest), train_state (epoch, step, seconds, skipped,
    the best validation figure) and `best`, that figure in words.

    Under torchrun (RANK/WORLD_SIZE set) each process trains a DistributedDataParallel replica
    on its share of every batch; rank 0 writes the run folder.
    """
    run = Run(out)
    if cfg is None:
        cfg, _ = run.start(None)  # the stored config
    kind = task_class(cfg.model)
    if cfg.init and not kind.fine_tunes:
        raise PixelPlayerError(
            f"{kind.title} trains from scratch: init (--init) is for the mask models "
            "(pixelplayer, amnet)"
        )
    if distributed.env_world()[1] > 1 and not kind.distributed:
        raise PixelPlayerError(f"{kind.title} trains in one process; run it without torchrun")
    dev = distributed.init_from_env(device)
    try:
        summary = _train(kind(cfg, data, dev, progress), run)
        distributed.barrier()  # every rank done before any tears down gloo (else it aborts)
        return summary
    finally:
        distributed.cleanup()


def _train(task: Task, run: Run) -> dict:
    cfg, t = task.cfg, task.cfg.train
    main = distributed.is_main()
    task.check()
    fresh, init = None, None
    if not run.exists():
        # built before the run folder is written: a config that cannot build its model (or an
        # init run that does not fit it) must not leave a run behind (seeded as below, so the
        # weights are the same)
        torch.manual_seed(t.seed)
        fresh = task.build()
        if cfg.init:
            init = init_weights(fresh[0], cfg.init, cfg.model)
    with distributed.main_first():  # rank 0 writes config.yaml and the task's shared files
        cfg, resuming = run.start(cfg)
        task.prepare(run)
    torch.manual_seed(t.seed)  # the same initial weights on every rank
    np.random.seed(t.seed)
    if fresh is None:
        torch.manual_seed(t.seed)
        fresh = task.build()
    model, kwargs = fresh
    if cfg.init and not resuming and init is None:  # a resumed run has its own weights
        init = init_weights(model, cfg.init, cfg.model)
    if init is not None and main:
        print(init_summary(init) + f"\nfull report: {run.init_report_path}")
        run.init_report_path.write_text(json.dumps(init, indent=1))
    world, dev = distributed.world_size(), task.device
    if world > 1 and dev.type == "cuda":
        # BatchNorm statistics over the global batch; SyncBatchNorm has no CPU (gloo) kernel,
        # so on CPU each replica normalises by its local batch (see distributed.average_buffers)
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    trainer = Trainer(task, fast_layout(model.to(dev)))
    state = trainer.state
    if resuming:  # every rank loads the same checkpoint
        trainer.resume(run.checkpoint(LAST))
        if main:
            # rows past the checkpoint were written by a run killed before it saved last.pt
            History(run.history_path, task.history_fields).trim(state["epoch"])
            print(f"resuming {run.folder} at epoch {state['epoch']} (step {state['step']})")
    if not distributed.same_everywhere([state["epoch"], state["step"]]):
        raise PixelPlayerError(
            f"the processes resumed from different checkpoints; {run.folder} must be on storage "
            "that every node sees"
        )
    if world > 1:
        ids = [dev.index] if dev.type == "cuda" else None
        trainer.net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    history = History(run.history_path, task.history_fields, run.tensorboard_dir) if main else None
    budget = t.max_minutes * 60 if t.max_minutes else math.inf
    if task.steps_per_epoch() == 0:
        raise PixelPlayerError(f"epoch_size {t.epoch_size} is smaller than batch {t.batch_size}")

    def save(name: str) -> None:
        trainer.save(run.checkpoint(name), kwargs)

    while state["epoch"] < t.epochs and state["seconds"] < budget:
        row, batches = trainer.epoch(budget, progress=task.progress and main)
        distributed.average_buffers(model)  # one set of BatchNorm statistics for every replica
        last = state["epoch"] >= t.epochs or state["seconds"] >= budget
        val = ""
        if task.val_figure and (state["epoch"] % t.val_every == 0 or last):
            entries, val = task.validate(model)
            row.update(entries)
            if row[task.val_figure] > state[task.best_key] or not run.has_checkpoint(BEST):
                state[task.best_key] = row[task.val_figure]
                if main:
                    save(BEST)
        if main:
            # history first: a kill before last.pt is written leaves a row that resume trims
            history.log(row)
            save(LAST)
            print(epoch_line(row, batches, val))
        distributed.barrier()  # nobody runs ahead of rank 0's checkpoint
    if history is not None:
        history.close()
    if main:
        task.finish(model, run)
    digest = weights_digest(model)
    if not distributed.same_everywhere([int(digest[:12], 16)]):  # 48 bits: exact as a float
        raise PixelPlayerError("the processes ended with different weights; please report this")
    summary = {"out": str(run.folder), "weights": digest, **state}
    if task.best_key:
        summary["best"] = task.best_text(state[task.best_key])
    return summary


def epoch_line(row: dict, batches: int, val: str) -> str:
    """The console line of an epoch: its loss, the task's other figures, validation, time."""
    others = [k for k in row if k.startswith("train_") and k != "train_loss"]
    skipped = row["skipped"]
    return (
        f"epoch {row['epoch']}: loss {row['train_loss']:.4f}"
        + "".join(f", {k.replace('_', ' ')} {row[k]:.3f}" for k in others)
        + val
        + (f", {skipped} of {batches} batches skipped (non-finite loss)" if skipped else "")
        + f" ({row['minutes']:.1f} min)"
    )


class Trainer:
    """One model's steps on a task: its optimizer and learning-rate schedule, the loss scaler,
    non-finite losses (train.on_nan) and the time budget, and `state`, what a checkpoint keeps
    of them (epoch, step, seconds, skipped, the best validation figure)."""

    def __init__(self, task: Task, model: nn.Module):
        self.task, self.cfg = task, task.cfg
        self.model = self.net = model  # net: the model or its DDP wrapper, for the forward pass
        self.optimizer = task.optimizer(model)
        self.schedule = Schedule(self.optimizer, self.cfg)
        # float16 needs loss scaling against underflow; bfloat16 has float32's range
        enabled = task.amp_dtype == torch.float16
        self.scaler = torch.amp.GradScaler(task.device.type, enabled=enabled)
        best = {task.best_key: -math.inf} if task.best_key else {}
        self.state = {"epoch": 0, "step": 0, **best, "seconds": 0.0, "skipped": 0}

    def resume(self, path: Path) -> None:
        """Weights, optimizer, loss scaler and state from a checkpoint."""
        ckpt = load_checkpoint(path)
        load_weights(self.model, ckpt["state_dict"], path)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(ckpt["scaler"])
        self.state.update(ckpt["train_state"])

    def save(self, path: Path, kwargs: dict) -> None:
        """A checkpoint that rebuilds the model (its kwargs) and resumes its training."""
        save_checkpoint(
            path,
            self.model,
            self.cfg.model,
            kwargs,
            optimizer=self.optimizer.state_dict(),
            scaler=self.scaler.state_dict(),
            train_state=dict(self.state),
            config=self.cfg.to_dict(),
        )

    def epoch(self, budget: float = math.inf, progress: bool = False) -> tuple[dict, int]:
        """Train the epoch `state["epoch"]` (until the budget of seconds is spent) -> (its row
        of history: epoch, step, the task's figures, skipped, lr, minutes; batches drawn)."""
        task, t, state = self.task, self.cfg.train, self.state
        epoch, world = state["epoch"], distributed.world_size()
        self.schedule.set_epoch(epoch)
        self.net.train()
        steps, batches, skipped = [], 0, 0
        bar = tqdm(
            total=task.steps_per_epoch(),
            desc=f"epoch {epoch + 1}/{t.epochs}",
            unit="batch",
            disable=not progress,
            leave=False,
        )
        started = time.perf_counter()
        for batch in task.batches(epoch):
            batches += 1
            # a skipped batch must not leave its statistics in the BatchNorm buffers either
            kept = [b.clone() for b in self.model.buffers()] if t.on_nan == "skip" else []
            step = task.loss(self.net, batch)
            share, finite = global_share(step.loss, step.denominator)
            if finite:
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(step.loss * share).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
                state["step"] += 1
                # this rank's part of the global batch's loss
                steps.append({"train_loss": step.loss.item() * share / world, **step.figures})
                bar.set_postfix(loss=f"{step.loss.item():.4f}")
            elif t.on_nan == "stop":
                loss = step.loss
                value = loss.item() if not torch.isfinite(loss) else "not finite on another rank"
                raise PixelPlayerError(
                    f"loss became {value} at step {state['step'] + 1} (epoch {epoch + 1}, batch "
                    f"{batches}); lower the learning rate, or set train.on_nan=skip"
                )
            else:
                skipped += 1
                for b, k in zip(self.model.buffers(), kept, strict=True):
                    b.copy_(k)
            bar.update(1)
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
        # one figure per epoch for every rank: the task's means, the slowest rank's time
        figures = task.epoch_figures(steps)
        elapsed = distributed.all_reduce([time.perf_counter() - started], op="max")[0]
        state["seconds"] += elapsed
        state["skipped"] += skipped
        state["epoch"] = epoch + 1
        row = {
            "epoch": state["epoch"],
            "step": state["step"],
            **figures,
            "skipped": skipped,
            "lr": self.optimizer.param_groups[0]["lr"],
            "minutes": state["seconds"] / 60,
        }
        return row, batches


def global_share(loss: torch.Tensor, denominator: torch.Tensor | None) -> tuple[float, bool]:
    """-> (factor, finite everywhere). The loss is a sum over the local batch divided by
    `denominator.sum()` (the weights, or `mixsep.loss_denominator`'s count of bins; None: a
    plain mean, every rank's share the same); `loss * factor`, averaged over ranks by DDP, is
    that of the whole global batch, so a run on W processes takes the same steps as one process
    with the same global batch. The non-finite check rides on the same all_reduce, so every
    rank skips (or stops on) the same batches."""
    finite = bool(torch.isfinite(loss))
    world = distributed.world_size()
    if world == 1:
        return 1.0, finite
    local = float(denominator.sum()) if denominator is not None else 1.0
    total, bad = distributed.all_reduce([local, float(not finite)])
    return local * world / total, bad == 0
