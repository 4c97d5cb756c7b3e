"""Weights read from files: a state dict in any of the usual wrappers, copied into a module
key by key, every mismatch named."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import torch
import torch.nn as nn

from pixelplayer.errors import PixelPlayerError


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise PixelPlayerError(f"{path}: no such weights file")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, foreign pickle, ...
        first = (str(exc).strip() or type(exc).__name__).splitlines()[0].split(". ")[0]
        raise PixelPlayerError(
            f"{path}: cannot read a state dict ({type(exc).__name__}: {first})"
        ) from exc
    # accept {'state_dict': ...} / {'model': ...} wrappers and DataParallel's 'module.' prefix
    for key in ("state_dict", "model"):
        if isinstance(sd, Mapping) and isinstance(sd.get(key), Mapping):
            sd = sd[key]
    if not isinstance(sd, Mapping) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise PixelPlayerError(f"{path}: not a state dict (a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def load_matching(
    module: nn.Module,
    path: str | Path,
    skip: tuple[str, ...],
    what: str,
    rename: Callable[[str], str] | None = None,
) -> None:
    """Copy a state dict file into `module`, every key matching by name and shape.

    Keys starting with a `skip` prefix are ignored on both sides, missing BatchNorm
    `num_batches_tracked` counters (old files) tolerated; any other missing, unexpected or
    wrongly shaped key raises PixelPlayerError naming it and `what` the file should hold.
    """
    sd = {k: v for k, v in read_state_dict(path).items() if not k.startswith(skip)}
    if rename is not None:
        sd = {rename(k): v for k, v in sd.items()}
    own = {k: v for k, v in module.state_dict().items() if not k.startswith(skip)}

    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    wrong = [
        f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in sd and sd[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", wrong)):
            if keys:
                more = f" (+{len(keys) - 5} more)" if len(keys) > 5 else ""
                parts.append(f"{label}: {', '.join(keys[:5])}{more}")
        raise PixelPlayerError(
            f"{path}: not {what} state dict for this network ({'; '.join(parts)})"
        )
    with torch.no_grad():
        for k, v in sd.items():
            own[k].copy_(v)
