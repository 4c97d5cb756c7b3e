"""How trained runs generalize: SDR, SIR, SAR, NSDR on fixed two-clip test mixtures per test set.

    python benchmarks/bench_generalize.py --run RUN [--run RUN2 ...] [--in-dist DIR]
        [--holdout-sounds DIR] [--holdout-pictures DIR] [--holdout-both DIR] [--real DIR]
        [--n 300] [--seed 0] [--out FILE.json] [--mixtures DIR]

Trains nothing: it scores the runs given (a pretrained-then-fine-tuned run, a run trained on
real clips alone, ...) on the same `--n` mixtures of two clips of different classes from each
test set given, and prints one Markdown table, a row per test set and method: the mean SDR,
SIR, SAR and NSDR in dB, and how many mixtures were scored. On `--real` it also scores the
classical baseline NMF + MFCC + k-means (`nmf-kmeans`) and the ideal binary mask (`ibm`, the
oracle ceiling). The scoring, the test sets and their kept mixture lists (DIR/mixtures/, e.g.
test-2mix-300-seed0-32767.json, which `pixelplayer eval RUN --data DIR --n 300` scores too)
are pixelplayer.generalization's. A set only tested on can be prepared with `--split 0,0,1`,
which puts all its clips in test.csv.

Making the sets and running it: the training world with `bash scripts/main.sh` (or `data synth`
+ `data prepare`), then the test sets, each only tested on, made with another seed (the held-out
ones draw other clip seeds anyway) and prepared with all clips in test.csv; the real clips are a
folder of solo videos <class>/<id>.mp4 (MUSIC's), split by video and class:

    for s in "in --clips 4" "sounds --clips 4 --holdout sounds" \
             "pictures --clips 8 --holdout pictures" "both --clips 8 --holdout both"; do
      set -- $s; name=$1; shift
      pixelplayer data synth data/test-$name --seed 123 "$@"
      pixelplayer data prepare data/test-$name/videos data/test-$name-prep --split 0,0,1
    done
    pixelplayer data prepare REAL_VIDEOS data/real-prep --split 0.6,0.15,0.25
    python benchmarks/bench_generalize.py --run demo/run --in-dist data/test-in-prep \
        --holdout-sounds data/test-sounds-prep --holdout-pictures data/test-pictures-prep \
        --holdout-both data/test-both-prep
    python benchmarks/bench_generalize.py --run runs/finetuned --run runs/real-only \
        --real data/real-prep
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pixelplayer.errors import PixelPlayerError
from pixelplayer.generalization import NUM_MIX, SETS, format_table, score_sets


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run", action="append", default=[], help="a trained run folder (repeat for several)"
    )
    for key, (flag, title) in SETS.items():
        more = "; also scores nmf-kmeans and ibm" if key == "real" else ""
        parser.add_argument(
            flag, dest=key, metavar="DIR", help=f"prepared folder of the {title} test set{more}"
        )
    parser.add_argument("--n", type=int, default=300, help="mixtures per test set (300)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mixture lists (0)")
    parser.add_argument("--out", help="also write the figures to this JSON file")
    parser.add_argument(
        "--mixtures",
        metavar="DIR",
        help="keep the mixture lists here (default: beside each set's index, where "
        "`pixelplayer eval` keeps them)",
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    sets = {key: getattr(args, key) for key in SETS if getattr(args, key)}
    try:
        report = score_sets(
            args.run,
            sets,
            n=args.n,
            seed=args.seed,
            mixtures=args.mixtures,
            batch_size=args.batch_size,
            device=args.device,
            progress=not args.no_progress,
        )
    except PixelPlayerError as exc:
        raise SystemExit(f"bench_generalize: error: {exc}") from None
    table = format_table(report["sets"])
    print(
        f"\n{args.n} mixtures of {NUM_MIX} clips of different classes per test set, seed "
        f"{args.seed}; mean over the scored mixtures, dB"
    )
    print(table)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**report, "table": table}, indent=1))
        print(f"figures written to {out}")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
