"""How far the sound net gets when the frame net is told the class: the CPU preset trained with
every frame replaced by a picture that codes its clip's class.

    python benchmarks/bench_sound_ceiling.py --data PREPARED --out RUN [--steps 2000]
                                             [--set KEY=VALUE ...]

Each frame becomes a flat colour with one inverted band, both fixed by the class name (no
instrument, no background, no distractor), in training and validation alike, so the visual
vector can name the class without fail. The run's validation SDR then measures the U-Net, the
synthesizer and the loss alone at a budget of `--steps` steps (lr x0.1 at 3/4 of them, as the
preset's 1,500 of 2,000); the same preset on the real frames gives the frame net's cost beside
it. `--set` passes settings to `pixelplayer train` (e.g. `spec.mask=ratio`) to compare
sound-side changes quickly. Prints the validation SDR by 100 steps and the best.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch

from pixelplayer.config import load_config
from pixelplayer.data import dataset
from pixelplayer.data.index import read_index, resolve_index
from pixelplayer.errors import PixelPlayerError
from pixelplayer.training import train

BAND = 20  # rows of the inverted band


def code_key(name: str) -> int:
    """What a class's colour and band are drawn from (distinct for the world's 14 classes)."""
    return sum(map(ord, name))


def check_codes(data: str) -> None:
    """Refuse a dataset where two classes would look alike."""
    classes = sorted({c.cls for c in read_index(resolve_index(data, "train"))})
    keys = [code_key(c) for c in classes]
    clashes = [c for c, k in zip(classes, keys, strict=True) if keys.count(k) > 1]
    if clashes:
        raise PixelPlayerError(f"classes {', '.join(clashes)} would get one code: rename them")


def class_code(name: str, frames: torch.Tensor) -> None:
    """Paint one clip's frames (3, T, H, W) uint8 with `name`'s colour and band, in place."""
    key = code_key(name)
    colour = np.random.default_rng(key * 7919).integers(0, 256, 3).astype(np.uint8)
    frames[:] = torch.from_numpy(colour)[:, None, None, None]
    top = (key % 8) * BAND
    frames[:, :, top : top + BAND] = 255 - frames[:, :, top : top + BAND]


def coded_items(getitem):
    """MixDataset.__getitem__ with each clip's frames class-coded."""

    def item(self: dataset.MixDataset, i: int) -> dict:
        out = getitem(self, i)
        for frames, c in zip(out["frames"], out["classes"].tolist(), strict=True):
            class_code(self.classes[c], frames)
        return out

    return item


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="prepared folder (train.csv, val.csv)")
    parser.add_argument("--out", required=True, help="the run folder to write")
    parser.add_argument("--steps", type=int, default=2000, help="training steps (2000)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    check_codes(args.data)

    cfg = load_config("pixelplayer-cpu", overrides=args.set)
    per_epoch = cfg.train.epoch_size // cfg.train.batch_size
    epochs = max(1, round(args.steps / per_epoch))
    cfg = load_config(
        "pixelplayer-cpu",
        overrides=[
            "train.max_minutes=null",
            f"train.epochs={epochs}",
            f"train.lr_steps=[{max(1, round(epochs * 3 / 4))}]",
            *args.set,
        ],
    )
    # DataLoader workers fork after this, so they serve coded frames too
    dataset.MixDataset.__getitem__ = coded_items(dataset.MixDataset.__getitem__)
    summary = train(cfg, args.data, args.out)
    with open(Path(args.out) / "history.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val_sdr")]
    print(
        "validation SDR by step: "
        + ", ".join(f"{r['step']}: {float(r['val_sdr']):.2f}" for r in rows)
    )
    print(f"class-coded frames, {epochs * per_epoch} steps: {summary['best']}")


if __name__ == "__main__":
    main()
