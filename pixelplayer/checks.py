"""Checks of command-line values made before any work starts, each a one-line error.

A number out of range or not finite, a device this torch build does not have, an output path
that cannot become a folder: all are refused here with a `PixelPlayerError` that names the
value and what is allowed, instead of a traceback later (or after an hour of work).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from pixelplayer.errors import PixelPlayerError


def _shown(value) -> str:
    """The value as the user wrote it, near enough: 8.0 as 8, a text quoted."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        if abs(value) < 1e15:
            return str(int(value))
    return f"{value}"


def number(
    option: str,
    value,
    low: float | None = None,
    high: float | None = None,
    integer: bool = False,
    above: bool = False,
):
    """`value` if it is a finite number in [low, high] (low excluded when `above`), else an
    error naming the option, the value and the range. None passes (an option not given)."""
    if value is None:
        return None
    lo = "" if low is None else f"{'>' if above else '>='} {_shown(float(low))}"
    hi = "" if high is None else f"<= {_shown(float(high))}"
    kind = "a whole number" if integer else "a number"
    wanted = f"{kind} {lo}{' and ' if lo and hi else ''}{hi}".strip()
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise PixelPlayerError(f"{option} {_shown(value)}: give {wanted}") from None
    if not math.isfinite(x):
        raise PixelPlayerError(f"{option} {_shown(value)}: not a finite number; give {wanted}")
    if integer and x != int(x):
        raise PixelPlayerError(f"{option} {_shown(value)}: give {wanted}")
    if (low is not None and (x <= low if above else x < low)) or (high is not None and x > high):
        raise PixelPlayerError(f"{option} {_shown(value)}: out of range; give {wanted}")
    return value


def device(name: str | None) -> str | None:
    """A device name this torch build can use (None: the default), or a one-line error."""
    if name is None:
        return None
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise PixelPlayerError(
            f"--device {name!r}: not a device name; give {_devices(torch)}"
        ) from None
    if dev.type == "cpu":
        return name
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = (
                f"this torch build ({torch.__version__}) has no CUDA"
                if torch.version.cuda is None
                else "no CUDA device is visible"
            )
            raise PixelPlayerError(f"--device {name!r}: {why}; give {_devices(torch)}")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise PixelPlayerError(
                f"--device {name!r}: there are {count} CUDA devices, cuda:0..cuda:{count - 1}"
            )
        return name
    if dev.type == "mps" and torch.backends.mps.is_available():
        return name
    raise PixelPlayerError(f"--device {name!r}: not available here; give {_devices(torch)}")


def _devices(torch) -> str:
    have = ["cpu"]
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        have += ["cuda"] + ([f"cuda:0..cuda:{n - 1}"] if n > 1 else ["cuda:0"])
    if torch.backends.mps.is_available():
        have.append("mps")
    return " or ".join(have) + ("" if len(have) > 1 else " (this build has no GPU)")


def output_folder(path: str | Path, option: str = "--out") -> Path:
    """A path that is, or can be made, a writable folder; otherwise a one-line error naming
    what stands in the way. Nothing is created."""
    path = Path(path)
    probe = path
    while True:
        if probe.is_symlink() and not probe.exists():
            raise PixelPlayerError(
                f"{option} {path}: {probe} is a broken symbolic link or a link loop"
            )
        if probe.exists():
            if not probe.is_dir():
                what = "a file" if probe.is_file() else "not a folder (a device, FIFO or socket)"
                where = "" if probe == path else f" (in the way: {probe})"
                raise PixelPlayerError(
                    f"{option} {path}: {what}{where}; give a folder (it is created if missing)"
                )
            if not os.access(probe, os.W_OK | os.X_OK):
                raise PixelPlayerError(f"{option} {path}: {probe} is not writable")
            return path
        parent = probe.parent
        if parent == probe:
            return path
        probe = parent
