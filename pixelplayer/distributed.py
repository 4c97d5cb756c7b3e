"""Process groups for `torchrun`: one training process per device, on one or several machines.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them everything here is a no-op and the
caller runs as a single process. The backend follows the device: nccl on CUDA, gloo on CPU.
Collectives move small float vectors only (sums of scores, flags), so a CPU tensor on gloo and a
CUDA tensor on nccl are the only two cases.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

import torch
import torch.distributed as dist

from pixelplayer.errors import PixelPlayerError

_state: dict = {"device": torch.device("cpu"), "owned": False}


def env_world() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) when absent."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as exc:
        raise PixelPlayerError(f"RANK/WORLD_SIZE/LOCAL_RANK must be integers ({exc})") from exc
    return rank, world, local


def pick_device(name: str | None = None) -> torch.device:
    """The device `name` ("cpu", "cuda:1" ...), or by default cuda when available, else cpu."""
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def init_from_env(device: str | None = None) -> torch.device:
    """Join the process group torchrun describes (if any) and return this process's device.

    `device` "cuda" (or none given, on a machine with CUDA) becomes cuda:LOCAL_RANK.
    """
    rank, world, local = env_world()
    dev = pick_device(device)
    if world > 1 and dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    _state["device"] = dev
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=rank, world_size=world)
        _state["owned"] = True
    return dev


def cleanup() -> None:
    """Leave the process group, if this module created it."""
    if _state["owned"] and dist.is_initialized():
        dist.destroy_process_group()
    _state["owned"] = False


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0 writes files, prints and shows progress bars."""
    return rank() == 0


def barrier() -> None:
    if active():
        dist.barrier()


def all_reduce(values: Sequence[float], op: str = "sum") -> list[float]:
    """Sum (or max) each value over all ranks; every rank gets the result."""
    if not active():
        return [float(v) for v in values]
    t = torch.tensor(values, dtype=torch.float64, device=_state["device"])
    dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return t.tolist()


def any_rank(flag: bool) -> bool:
    """True on every rank when it is true on any: decisions that end loops must agree."""
    return all_reduce([float(flag)], op="max")[0] > 0


def same_everywhere(values: Sequence[float]) -> bool:
    """Whether every rank holds these same values."""
    high = all_reduce(values, op="max")
    low = all_reduce([-v for v in values], op="max")
    return all(h == -lo for h, lo in zip(high, low, strict=True))


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. writes files), then the others (e.g. read them)."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def average_buffers(module: torch.nn.Module) -> None:
    """Average the floating-point buffers (BatchNorm running statistics) over ranks in place,
    so every replica, and the checkpoint, holds the same statistics."""
    if not active():
        return
    for buf in module.buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
            buf.div_(dist.get_world_size())
