"""Distributed training: sharded epochs, the global loss, and two CPU processes under torchrun."""

import csv
import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.utils.data import DataLoader

from pixelplayer import distributed, mixsep
from pixelplayer.config import load_config
from pixelplayer.models.registry import load_checkpoint, weights_digest
from pixelplayer.training import build_model
from pixelplayer.training.loop import global_share
from pixelplayer.training.samplers import EpochItems, EpochShard
from tests.helpers import TINY as TRAIN_TINY

TINY = [*TRAIN_TINY, "train.amp=false"]


class Draws:
    """Stands in for MixDataset: item i of epoch e is (e, i)."""

    def __init__(self, length: int):
        self.length, self.epoch = length, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[int, int]:
        return self.epoch, i


def test_rank_batches_make_up_the_global_batch():
    length, batch, world = 18, 4, 2  # 18 items: 4 global batches, the last 2 items unused
    single = [b[1].tolist() for b in DataLoader(Draws(length), batch_size=batch, drop_last=True)]
    ranks = []
    for rank in range(world):
        shard = EpochShard(length, rank, world)
        shard.set_epoch(3)
        loader = DataLoader(
            EpochItems(Draws(length)), batch_size=batch // world, sampler=shard, drop_last=True
        )
        ranks.append([(b[0].tolist(), b[1].tolist()) for b in loader])
    assert len(ranks[0]) == len(ranks[1]) == len(single) == 4  # every rank takes as many steps
    for k, whole in enumerate(single):
        assert all(epochs == [3, 3] for epochs, _ in (ranks[0][k], ranks[1][k]))
        assert sorted(ranks[0][k][1] + ranks[1][k][1]) == whole


def test_epoch_reaches_persistent_workers():
    # a persistent worker keeps its own copy of the dataset: the epoch must come with the index
    shard = EpochShard(4)
    loader = DataLoader(
        EpochItems(Draws(4)), batch_size=4, sampler=shard, num_workers=1, persistent_workers=True
    )
    seen = []
    for epoch in range(3):
        shard.set_epoch(epoch)
        seen.append([b[0].tolist() for b in loader])
    assert seen == [[[0] * 4], [[1] * 4], [[2] * 4]]


def _grads(model, audios, frames, cfg, factor=None):
    spec, mag = mixsep.network_input(audios.sum(1), cfg.spec)
    masks, weight = mixsep.targets(audios, mag, cfg.spec)
    loss = mixsep.loss(model(mag, frames), masks, weight, cfg.spec)
    scale = 1.0 if factor is None else factor(loss, weight)
    model.zero_grad()
    (loss * scale).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()]), loss.item() * scale


def test_rank_losses_average_to_the_global_weighted_mean(monkeypatch):
    """Two ranks emulated in one process: DDP's mean of the scaled rank gradients equals the
    gradient of the whole batch. BatchNorm in eval mode, as its batch statistics are per rank
    on CPU."""
    cfg = load_config("pixelplayer-cpu", TINY)
    torch.manual_seed(0)
    model = build_model(cfg)[0].eval()
    # sources of very different loudness: the loss weights differ between the two halves
    audios = torch.randn(4, 2, 8191) * torch.tensor([0.01, 0.1, 0.5, 1.0]).view(4, 1, 1)
    frames = torch.randn(4, 2, 3, 3, 32, 32)
    whole, whole_loss = _grads(model, audios, frames, cfg)
    halves = [(audios[r::2], frames[r::2]) for r in range(2)]
    sums = []
    for a, _ in halves:
        mag = mixsep.network_input(a.sum(1), cfg.spec)[1]
        sums.append(float(mixsep.targets(a, mag, cfg.spec)[1].sum()))
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "all_reduce", lambda values, op="sum": [sum(sums), 0.0])

    def factor(loss, weight):
        share, finite = global_share(loss, weight)
        assert finite
        return share

    parts = [_grads(model, a, f, cfg, factor) for a, f in halves]
    rel = float(((parts[0][0] + parts[1][0]) / 2 - whole).norm() / whole.norm())
    print(f"rank-mean gradient vs whole batch: relative difference {rel:.2e}")
    assert rel < 1e-5  # float32 sums in another order
    assert (parts[0][1] + parts[1][1]) / 2 == pytest.approx(whole_loss, rel=1e-6)
    # without the factors, the plain mean of the rank gradients is another step
    plain = [_grads(model, a, f, cfg)[0] for a, f in halves]
    plain_rel = float(((plain[0] + plain[1]) / 2 - whole).norm() / whole.norm())
    print(f"unweighted rank mean vs whole batch: relative difference {plain_rel:.2e}")
    assert plain_rel > 1e-3


WORKER = textwrap.dedent(
    """
    import sys
    from pixelplayer import distributed
    from pixelplayer.config import load_config
    from pixelplayer.training import train

    config, data, out, *sets = sys.argv[1:]
    summary = train(load_config(config, sets), data, out, device="cpu", progress=False)
    # one write, so the two processes' lines cannot interleave
    sys.stdout.write(f"RANK {distributed.env_world()[0]} WEIGHTS {summary['weights']}\\n")
    """
)


def _losses(out):
    with open(out / "history.csv") as f:
        return [float(r["train_loss"]) for r in csv.DictReader(f)]


@pytest.mark.slow
def test_two_processes_train_like_one(prepared, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    args = ["pixelplayer-cpu", str(prepared)]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = tmp_path / "ddp"
    done = subprocess.run(
        [*torchrun, "2", str(script), *args, str(ddp), *TINY],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    weights = dict(re.findall(r"RANK (\d) WEIGHTS ([0-9a-f]{64})", done.stdout))
    assert set(weights) == {"0", "1"}, done.stdout
    # (a) both replicas hold the same weights and BatchNorm statistics, and rank 0 saved them
    assert weights["0"] == weights["1"]
    assert weights_digest(load_checkpoint(ddp / "last.pt")["state_dict"]) == weights["0"]
    assert done.stdout.count("epoch 2:") == 1  # rank 0 alone prints

    # (b) the loss of one process with the same global batch
    from pixelplayer.training import train

    single = tmp_path / "single"
    train(load_config(args[0], TINY), prepared, single, device="cpu", progress=False)
    a, b = _losses(ddp), _losses(single)
    rel = [abs(x - y) / y for x, y in zip(a, b, strict=True)]
    print(f"train loss per epoch: 2 processes {a}, 1 process {b}, relative difference {rel}")
    # Each replica's BatchNorm normalises by its own 2 mixtures instead of all 4 (SyncBatchNorm
    # needs CUDA); that alone moves the loss of the first batch by about 0.2 % on this tiny net
    assert max(rel) < 0.01
