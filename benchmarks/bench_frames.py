"""How well a pretrained frame net (`pixelplayer train --model frames`) names instruments in
video frames it never saw: the accuracy of its classifier on the test clips' frames.

    python benchmarks/bench_frames.py --run RUN [--in-dist DIR] [--holdout-pictures DIR]
        [--real DIR] [--every 20]

Each DIR is a prepared folder (its test.csv), as for bench_generalize.py; every `--every`-th
frame of each test clip is shown (short side resized, centre crop, as separation shows them).
Clips of a class the run does not know (real MUSIC's erhu) are counted apart, not scored.
Prints one Markdown table: per set, the frames scored, the accuracy, and chance (1 / the
classes the run names).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from pixelplayer.data.dataset import load_frame
from pixelplayer.data.index import frame_path, read_index, resolve_index
from pixelplayer.generalization import SETS
from pixelplayer.models.frame import FrameClassifier
from pixelplayer.run import Run
from pixelplayer.training.frames import predict

FRAME_SETS = ("in_dist", "holdout_sounds", "holdout_pictures", "holdout_both", "real")


def set_accuracy(model: torch.nn.Module, data: Path, size: int, every: int) -> dict:
    """-> frames scored, hits, clips of unknown classes."""
    known = {c: i for i, c in enumerate(model.classes)}
    clips = read_index(resolve_index(data, "test"))
    frames, labels = [], []
    for clip in clips:
        if clip.cls in known:
            for i in range(0, clip.num_frames, every):
                frames.append(load_frame(frame_path(clip.frames_dir, i), size, None))
                labels.append(known[clip.cls])
    named = predict(model, np.stack(frames), 64, torch.device("cpu")) if frames else []
    hits = int((np.asarray(named) == np.array(labels)).sum())
    return {"frames": len(frames), "hits": hits, "unknown": sum(c.cls not in known for c in clips)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a frames run folder")
    for key in FRAME_SETS:
        flag, title = SETS[key]
        parser.add_argument(flag, dest=key, metavar="DIR", help=f"the {title} test set")
    parser.add_argument("--every", type=int, default=20, help="every n-th frame (20)")
    args = parser.parse_args(argv)
    run = Run(args.run)
    model, _ = run.load_model(FrameClassifier, needed="give a run of --model frames")
    size = run.config.sample.frame_size
    print("| test set | frames | accuracy | chance | clips of unknown classes |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for key in FRAME_SETS:
        if getattr(args, key):
            r = set_accuracy(model, Path(getattr(args, key)), size, args.every)
            acc = 100 * r["hits"] / max(r["frames"], 1)
            chance = 100 / len(model.classes)
            cells = [SETS[key][1], r["frames"], f"{acc:.1f} %", f"{chance:.1f} %", r["unknown"]]
            print("| " + " | ".join(map(str, cells)) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
