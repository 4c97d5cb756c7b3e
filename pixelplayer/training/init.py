"""`train --init RUN`: a new run starts from another run's weights, to fine-tune them."""

from __future__ import annotations

from pathlib import Path

import torch

from pixelplayer.errors import PixelPlayerError
from pixelplayer.models.registry import key_summary, load_checkpoint, weights_digest
from pixelplayer.run import Run


def init_weights(model: torch.nn.Module, source: str | Path, model_name: str) -> dict:
    """Start `model` from another run's weights, to fine-tune it: copy each tensor of the
    checkpoint (RUN's best.pt, else last.pt, or a checkpoint file) that matches by name and
    shape. -> the report: what was loaded, and the names that were not.

    Frozen parts (AMnet's stages) keep the weights of the runs the config names for them.
    """
    path = Path(source)
    if path.is_dir():
        try:
            path = Run(path).latest()
        except PixelPlayerError:
            raise PixelPlayerError(
                f"cannot init from {source}: the run has no checkpoint (best.pt or last.pt)"
            ) from None
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
            lines.append("  " + key_summary(label, list(report[key])))
    return "\n".join(lines)
