"""AMnet against its own stage 1 (PixelPlayer) on the same test mixtures.

    python benchmarks/bench_amnet.py --run AMNET_RUN --data PREPARED [--n 300]

Scores the AMnet run (`pixelplayer train --model amnet`) and its appearance stage, which is
the PixelPlayer run it was built on, with the shared evaluator on two fixed lists of test
mixtures: two clips of different classes, and two clips of one class (two players that look
alike, each moving with its own part). Prints one line per list and the targets: on one class
AMnet's SDR at least 3 dB above PixelPlayer's; on different classes not below it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pixelplayer.cli import main as cli


def scores(run: Path, data: Path, n: int, same_class: bool) -> dict[str, dict]:
    kind = "same-class" if same_class else "distinct"
    out = run / "eval" / kind
    argv = ["eval", str(run), "--data", str(data), "--n", str(n), "--out", str(out)]
    argv += ["--separator", "amnet,appearance,ibm,mixture", "--no-progress"]
    if same_class:
        argv.append("--same-class")
    if cli(argv) != 0:
        raise SystemExit(f"pixelplayer {' '.join(argv)} failed")
    results = json.loads((out / "metrics.json").read_text())["results"]
    return {name.split(" ")[0]: r for name, r in results.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, required=True, help="an AMnet run folder")
    p.add_argument("--data", type=Path, required=True, help="prepared folder (test split)")
    p.add_argument("--n", type=int, default=300, help="mixtures per list (300)")
    args = p.parse_args()
    lines = []
    for same, need in ((True, 3.0), (False, 0.0)):
        r = scores(args.run, args.data, args.n, same)
        am, pp = r["amnet"]["mean"]["sdr"], r["appearance"]["mean"]["sdr"]
        kind = "one class" if same else "different classes"
        met = "met" if am - pp >= need else "NOT met"
        lines.append(
            f"{kind}: AMnet SDR {am:.2f} dB, PixelPlayer (stage 1) {pp:.2f} dB, gain "
            f"{am - pp:+.2f} dB (target >= {need:+.1f}: {met}); ideal binary mask "
            f"{r['ibm']['mean']['sdr']:.2f}, mixture {r['mixture']['mean']['sdr']:.2f}"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
