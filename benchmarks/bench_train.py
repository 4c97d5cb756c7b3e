"""Training throughput of `pixelplayer train`: clips per second, data loading included.

    python benchmarks/bench_train.py --data PREPARED [--preset cpu|paper] [--steps 40]
                                     [--batch B] [--device cpu|cuda]

Runs the real training loop (`pixelplayer.training.train`) for one epoch of `steps` steps in a
temporary run folder and reads its own clock: the seconds the loop spent training (the trainer
leaves validation and checkpoints out of it), so the figure is what a long run sustains. A clip
is one video of a mixture (a mixture of N holds N clips). The first steps warm up (threads,
allocator, loader workers), so give at least a few dozen. `--batch` overrides the preset's
batch (the paper's 80 does not fit a 2-core CPU's patience); the line says which was used.
Prints one line.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import torch

from pixelplayer.config import load_config
from pixelplayer.training import train

PRESETS = {"cpu": "pixelplayer-cpu", "paper": "pixelplayer-paper"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="prepared folder (train.csv, val.csv)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--steps", type=int, default=40, help="training steps timed")
    parser.add_argument("--batch", type=int, help="batch size (default: the preset's)")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    cfg = load_config(PRESETS[args.preset])
    batch = args.batch or cfg.train.batch_size
    overrides = [
        f"train.batch_size={batch}",
        f"train.epoch_size={batch * args.steps}",
        "train.epochs=1",
        "train.max_minutes=null",
        f"train.val_mixtures={max(2, batch)}",
        *args.set,
    ]
    cfg = load_config(PRESETS[args.preset], overrides)
    with tempfile.TemporaryDirectory() as tmp:
        summary = train(cfg, args.data, Path(tmp) / "run", device=args.device, progress=False)
        with open(Path(tmp) / "run" / "history.csv") as f:
            row = list(csv.DictReader(f))[-1]
    seconds = float(row["minutes"]) * 60
    steps = int(summary["step"])
    clips = steps * batch * cfg.sample.num_mix
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        device = torch.cuda.get_device_name(torch.device(device))
    print(
        f"train throughput, {args.preset} preset (batch {batch}, {cfg.sample.num_mix} clips per "
        f"mixture, amp {cfg.train.amp}, {device}): {clips / seconds:.1f} clips/s "
        f"({steps * batch / seconds:.1f} mixtures/s, {seconds / steps:.2f} s/step over "
        f"{steps} steps)"
    )


if __name__ == "__main__":
    main()
