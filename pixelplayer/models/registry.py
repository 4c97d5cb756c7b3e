"""Model registry and self-describing checkpoints (the package `pixelplayer.models` registers
the built-in models when it is imported, before any of its modules).

A checkpoint is a dict {'model': name, 'kwargs': constructor kwargs, 'state_dict', 'versions',
**extra}; `load_model` rebuilds the network from name + kwargs. Everything in it must load with
torch.load(weights_only=True): tensors and plain Python data only, never arbitrary pickles.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from pixelplayer.atomic import atomic_path
from pixelplayer.errors import PixelPlayerError

_REGISTRY: dict[str, type[nn.Module]] = {}
_REQUIRED = ("model", "kwargs", "state_dict")


def register(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make a model buildable (and loadable from checkpoints) by `name`."""

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        old = _REGISTRY.get(name)
        if old is not None and old.__qualname__ != cls.__qualname__:
            raise ValueError(f"model name {name!r} is already taken by {old.__qualname__}")
        _REGISTRY[name] = cls
        return cls

    return deco


def known_models() -> list[str]:
    return sorted(_REGISTRY)


def get_class(name: str) -> type[nn.Module]:
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise PixelPlayerError(f"unknown model {name!r}; known models: {known}")
    return _REGISTRY[name]


def build(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate the model registered as `name` with `kwargs`."""
    cls = get_class(name)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # a misspelt or impossible option in model_kwargs
        raise PixelPlayerError(f"cannot build {name!r} from model_kwargs ({exc})") from exc


# --- checkpoints -------------------------------------------------------------------------------

_PLAIN = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.device, torch.Size)


def _check_plain(obj: Any, where: str) -> None:
    """Refuse, before writing, anything torch.load(weights_only=True) would refuse on reading.

    Exact type checks: numpy scalars subclass float but pickle as numpy objects.
    """
    if type(obj) in _PLAIN or isinstance(obj, torch.Tensor):
        return
    if type(obj) in (dict, OrderedDict):
        for key, val in obj.items():
            _check_plain(key, f"{where} key")
            _check_plain(val, f"{where}[{key!r}]")
        return
    if type(obj) in (list, tuple):
        for i, val in enumerate(obj):
            _check_plain(val, f"{where}[{i}]")
        return
    raise TypeError(
        f"checkpoint field {where} is a {type(obj).__qualname__}; only tensors and plain "
        "Python data (dict, list, tuple, str, numbers, None) can be stored"
    )


def save_checkpoint(
    path: str | Path, model: nn.Module, name: str, kwargs: dict[str, Any], **extra: Any
) -> Path:
    """Write a checkpoint atomically: a temp file in the same folder, fsync, then os.replace.

    A crash mid-write leaves the previous checkpoint intact. `extra` (epoch, optimizer state,
    history, ...) is stored alongside and must be plain data too.
    """
    from pixelplayer import __version__

    path = Path(path)
    ckpt = {
        "model": name,
        "kwargs": kwargs,
        "state_dict": model.state_dict(),
        "versions": {"pixelplayer": str(__version__), "torch": str(torch.__version__)},
        **extra,
    }
    for key, val in ckpt.items():
        _check_plain(val, key)
    return save_atomic(ckpt, path)


def save_atomic(obj: Any, path: str | Path) -> Path:
    """torch.save to a temp file beside `path` (`atomic_path`), fsync, then rename: a crash
    mid-write leaves the previous file intact.

    The object is serialised in memory first, so a failing write (disk full, file size limit)
    surfaces as the OSError it is, not as torch's zip-writer error; the previous file stays and
    the temp file is removed.
    """
    path = Path(path)
    buf = io.BytesIO()
    torch.save(obj, buf)
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            f.write(buf.getbuffer())
            f.flush()
            os.fsync(f.fileno())  # the bytes on disk before the rename
    except OSError as exc:
        raise PixelPlayerError(_write_error(path, exc, buf.getbuffer().nbytes)) from exc
    try:  # make the rename itself durable; not possible on every platform
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def _write_error(path: Path, exc: OSError, size: int) -> str:
    """One line: what failed, why, and what to do about it."""
    reason = exc.strerror or str(exc)
    need = f"{size / 1e6:.1f} MB"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            free = f"{shutil.disk_usage(path.parent).free / 1e6:.1f} MB free"
        except OSError:
            free = "free space unknown"
        return f"cannot write {path}: {reason}; free space on that disk ({free}, {need} needed)"
    if exc.errno == errno.EFBIG:
        return (
            f"cannot write {path}: {reason}; the file system or a file size limit (ulimit -f) "
            f"refuses a {need} file"
        )
    return f"cannot write {path}: {reason}; check the folder's permissions and free space"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint safely (weights_only) onto the CPU; PixelPlayerError if unusable."""
    path = Path(path)
    if not path.is_file():
        raise PixelPlayerError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise PixelPlayerError(f"{path}: cannot read checkpoint: empty file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        # first sentence only: torch's zip errors run on for several lines of advice
        msg = (str(exc).strip() or type(exc).__name__).splitlines()[0].split(". ")[0]
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            reason = "it holds Python objects other than tensors and plain data (not loaded)"
        else:
            reason = f"truncated or corrupt ({type(exc).__name__}: {msg})"
        raise PixelPlayerError(f"{path}: cannot read checkpoint: {reason}") from exc
    if not isinstance(ckpt, dict) or not all(key in ckpt for key in _REQUIRED):
        raise PixelPlayerError(
            f"{path}: not a pixelplayer checkpoint (expected a dict with keys "
            f"{', '.join(_REQUIRED)}; a bare state dict cannot be rebuilt)"
        )
    if not isinstance(ckpt["model"], str) or not isinstance(ckpt["kwargs"], dict):
        raise PixelPlayerError(f"{path}: not a pixelplayer checkpoint (bad 'model'/'kwargs')")
    sd = ckpt["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise PixelPlayerError(f"{path}: not a pixelplayer checkpoint (bad 'state_dict')")
    return ckpt


def _without_pretrained(kwargs: Any) -> Any:
    # init-time weight files (e.g. ImageNet) are superseded by the state dict and may not
    # exist on the machine that loads the checkpoint
    if isinstance(kwargs, dict):
        return {
            k: (None if k == "pretrained" else _without_pretrained(v)) for k, v in kwargs.items()
        }
    return kwargs


def key_summary(label: str, keys: list[str]) -> str:
    """ "missing 6: a, b, c, d (+2 more)": a count and the first few names."""
    more = f" (+{len(keys) - 4} more)" if len(keys) > 4 else ""
    return f"{label} {len(keys)}: {', '.join(keys[:4])}{more}"


def load_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a checkpoint describes, load its weights -> (model in eval mode, ckpt)."""
    ckpt = load_checkpoint(path)
    try:
        cls = get_class(ckpt["model"])
    except PixelPlayerError as exc:
        raise PixelPlayerError(f"{path}: {exc}") from exc
    try:
        model = cls(**_without_pretrained(ckpt["kwargs"]))
    except (TypeError, ValueError) as exc:
        raise PixelPlayerError(
            f"{path}: cannot build {ckpt['model']!r} from the stored kwargs ({exc})"
        ) from exc
    load_weights(model, ckpt["state_dict"], path)
    return model.eval(), ckpt


def load_weights(model: nn.Module, sd: dict[str, torch.Tensor], path: str | Path) -> None:
    """model.load_state_dict(sd), with weights that do not fit (another model, other sizes)
    reported as one line naming the first keys, instead of torch's RuntimeError."""
    own = model.state_dict()
    problems = [
        key_summary(label, keys)
        for label, keys in (
            ("missing", [k for k in own if k not in sd]),
            ("unexpected", [k for k in sd if k not in own]),
            ("wrong shape", [k for k in own if k in sd and sd[k].shape != own[k].shape]),
        )
        if keys
    ]
    if problems:
        raise PixelPlayerError(f"{path}: weights do not fit the model ({'; '.join(problems)})")
    model.load_state_dict(sd, strict=True)


def weights_digest(model: nn.Module | dict[str, torch.Tensor]) -> str:
    """SHA-256 of a model's state dict (names and values, whatever their memory layout)."""
    sd = model.state_dict() if isinstance(model, nn.Module) else model
    h = hashlib.sha256()
    for name, t in sd.items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
