"""Train the Audio-Motion Embedding (when the run folder holds none) and score it on test clips.

    python benchmarks/bench_ame.py [--data /work/exp/prepared] [--out RUN] [--trials 1000]
                                   [--set train.max_minutes=5 ...]

Trains `ame` into RUN (resumes an unfinished run), then asks, for a fixed seeded
list of windows of the held-out test clips: is the window's aligned audio closer to its motion
embedding than the same clip's audio shifted by at least `min_shift` (1 s)? Prints one line.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pixelplayer.ame import TEST_TRIALS, score_run
from pixelplayer.config import load_config
from pixelplayer.training import train

CONFIG = "ame"
TARGET = 0.90


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="/work/exp/prepared")
    p.add_argument("--out", default="/work/exp/runs/ame")
    p.add_argument("--trials", type=int, default=TEST_TRIALS)
    p.add_argument("--set", action="append", default=[], help="config override KEY=VALUE")
    p.add_argument("--device")
    args = p.parse_args()
    out = Path(args.out)
    started = time.perf_counter()
    cfg = (
        None if (out / "config.yaml").is_file() and not args.set else load_config(CONFIG, args.set)
    )
    summary = train(cfg, args.data, out, device=args.device, progress=False)
    trained = time.perf_counter()
    acc, n = score_run(out, args.data, "test", args.trials, device=args.device)
    met = "met" if acc >= TARGET else "NOT met"
    print(
        f"train {trained - started:.0f} s ({summary['seconds'] / 60:.1f} min of training, "
        f"{summary['step']} steps), scoring {time.perf_counter() - trained:.0f} s"
    )
    print(
        f"AME: aligned closer than shifted in {100 * acc:.1f}% of {n} trials "
        f"(held-out test clips) -> target >= {100 * TARGET:.0f}% {met}"
    )


if __name__ == "__main__":
    main()
