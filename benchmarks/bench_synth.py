"""Time `pixelplayer data synth` on the default dataset: 10 classes x 40 ten-second clips.

    python benchmarks/bench_synth.py [--clips 40] [--workers N]

Prints one line: clips, seconds, clips/s. The target is under 300 s on two cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from pixelplayer.data.synth.world import synthesize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=40, help="clips per class (default 40)")
    parser.add_argument("--workers", type=int, default=None, help="default: CPU count")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_synth_") as out:
        start = time.perf_counter()
        report = synthesize(out, clips_per_class=args.clips, workers=args.workers, progress=False)
        seconds = time.perf_counter() - start
    clips = len(report.metas)
    print(f"synth: {clips} clips, {seconds:.1f} s, {clips / seconds:.2f} clips/s")


if __name__ == "__main__":
    main()
