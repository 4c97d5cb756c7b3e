"""How trained runs generalize: SDR, SIR, SAR, NSDR on fixed two-clip test mixtures per test set.

    python benchmarks/bench_generalize.py --run RUN [--run RUN2 ...] [--in-dist DIR]
        [--holdout-sounds DIR] [--holdout-pictures DIR] [--holdout-both DIR] [--real DIR]
        [--n 300] [--seed 0] [--out FILE.json] [--mixtures DIR]

Trains nothing: it scores the runs given (a pretrained-then-fine-tuned run, a run trained on
real clips alone, ...) on the same `--n` mixtures of two clips of different classes from each
test set given, and prints one Markdown table, a row per test set and method: the mean SDR,
SIR, SAR and NSDR in dB, and how many mixtures were scored. On `--real` it also scores the
classical baseline NMF + MFCC + k-means (`nmf-kmeans`) and the ideal binary mask (`ibm`, the
oracle ceiling) on those mixtures. The scoring is `pixelplayer eval`'s (pixelplayer.evaluate),
with the runs' own sample config (sr, audio_len, fps, frames): runs whose configs cut other
windows or frames cannot share mixtures and are refused. A run is scored by its main separator
(a PixelPlayer run's model, an AMnet run's `amnet`, an AV-MIML run's `miml`).

A test set is a prepared folder (`pixelplayer data prepare`): its test split (test.csv), or all
its clips (all.csv) when it has no test.csv (a set only tested on can be prepared with
`--split 0,0,1`, which puts all its clips in test.csv). Each set's mixture list is drawn once
and kept beside its index where `pixelplayer eval` keeps it (DIR/mixtures/, e.g.
test-2mix-300-seed0-32767.json: `pixelplayer eval RUN --data DIR --n 300` scores the same
mixtures), or in `--mixtures DIR`; a second call reads it back.

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
import math
import sys
from dataclasses import asdict, replace
from pathlib import Path

from pixelplayer.config import Config, load_config
from pixelplayer.data.dataset import MixDataset, SampleConfig, fixed_mixtures, usable_clips
from pixelplayer.data.index import parse_index, read_index
from pixelplayer.errors import PixelPlayerError
from pixelplayer.evaluate import METRICS, _loaded, evaluate, mixture_list_path
from pixelplayer.models.registry import get_class
from pixelplayer.separation.separators import (
    BASELINE_TITLES,
    ORACLE_TITLES,
    ORACLES,
    MaskModelSeparator,
    Separator,
    baseline,
    run_separators,
)

NUM_MIX = 2
# test set -> (its option, its name in the table); in the order of the table
SETS = {
    "in_dist": ("--in-dist", "in-distribution"),
    "holdout_sounds": ("--holdout-sounds", "held-out sounds"),
    "holdout_pictures": ("--holdout-pictures", "held-out pictures"),
    "holdout_both": ("--holdout-both", "held-out sounds + pictures"),
    "real": ("--real", "real"),
}
REAL_ONLY = ("nmf-kmeans", "ibm")  # scored on the real set only, beside the runs
# the sample settings that decide which windows and frames a mixture serves; the others
# (num_mix, distinct_classes, same_class, random_gain, silent) are the evaluation's or training's
SERVED = ("sr", "audio_len", "fps", "num_frames", "stride_frames", "frame_size")


# --- runs -------------------------------------------------------------------------------------


def check_runs(runs: list[str]) -> list[Config]:
    """The config of each run folder, or a one-line error for a folder that is not one."""
    seen = set()
    for run in runs:
        folder = Path(run)
        if not (folder / "config.yaml").is_file():
            what = "not a run folder (no config.yaml)" if folder.is_dir() else "no such folder"
            raise PixelPlayerError(f"--run {run}: {what}")
        if folder.resolve() in seen:
            raise PixelPlayerError(f"--run {run}: given twice")
        seen.add(folder.resolve())
    return [load_config(Path(run) / "config.yaml") for run in runs]


def load_runs(runs: list[str], cfgs: list[Config], device: str | None) -> dict[str, Separator]:
    """label -> the main separator of each run ('model', 'amnet' or 'miml'), loaded as
    `pixelplayer eval` loads it."""
    separators: dict[str, Separator] = {}
    names = [Path(r).name for r in runs]
    for run, name, cfg in zip(runs, names, cfgs, strict=True):
        offered = _loaded(run, run_separators, run, cfg, device)
        main = next(iter(offered))
        separator = _loaded(run, offered[main])
        if isinstance(separator, MaskModelSeparator) and not isinstance(
            separator.model, get_class(cfg.model)
        ):
            raise PixelPlayerError(
                f"{run}: the checkpoint holds a {type(separator.model).__name__}, but the run's "
                f"config.yaml says model {cfg.model!r}"
            )
        label = cfg.model if main == "model" else main
        separators[f"{label} ({name if names.count(name) == 1 else run})"] = separator
    return separators


def common_sample(runs: list[str], cfgs: list[Config]) -> SampleConfig:
    """The sample config every run is scored with: the runs' own, which must agree."""
    if not cfgs:
        cfgs, runs = [Config()], ["defaults"]
    first = cfgs[0].sample
    for run, cfg in zip(runs[1:], cfgs[1:], strict=True):
        differ = [
            f"{k} {getattr(first, k)} vs {getattr(cfg.sample, k)}"
            for k in SERVED
            if getattr(first, k) != getattr(cfg.sample, k)
        ]
        motion = {first.motion_size, cfg.sample.motion_size} - {0}
        if len(motion) > 1:
            differ.append(f"motion_size {first.motion_size} vs {cfg.sample.motion_size}")
        if differ:
            raise PixelPlayerError(
                f"runs {runs[0]} and {run} cut their samples differently ({', '.join(differ)}); "
                "they cannot be scored on identical mixtures"
            )
    motion = max(c.sample.motion_size for c in cfgs)  # frames served to the runs that read them
    return replace(
        first, num_mix=NUM_MIX, distinct_classes=True, same_class=0.0, motion_size=motion
    )


# --- test sets --------------------------------------------------------------------------------


def set_index(flag: str, folder: str) -> Path:
    """The index a test set is scored on: DIR/test.csv, else DIR/all.csv (or a csv given)."""
    p = Path(folder)
    if p.is_file() and p.suffix == ".csv":
        return p
    if not p.is_dir():
        raise PixelPlayerError(f"{flag} {folder}: no such prepared folder")
    for name in ("test.csv", "all.csv"):
        if (p / name).is_file():
            return p / name
    raise PixelPlayerError(
        f"{flag} {folder}: neither test.csv nor all.csv in it; make it with "
        "`pixelplayer data prepare VIDEOS DIR`"
    )


def set_clips(flag: str, index: Path, sample: SampleConfig) -> list:
    """The clips of `index`, checked to give two-clip mixtures of different classes."""
    if not parse_index(index):
        raise PixelPlayerError(
            f"{flag} {index}: no test clips (prepare's 0.8,0.1,0.1 split gives a class a test "
            "clip from 3 clips up; make more clips per class)"
        )
    clips = read_index(index)
    usable, short = usable_clips(clips, sample)
    classes = sorted({c.cls for c in usable})
    if len(classes) < NUM_MIX:
        window = sample.audio_len / sample.sr
        held = f" ({', '.join(classes)})" if classes else ""
        raise PixelPlayerError(
            f"{flag} {index}: {len(usable)} clips hold a {window:.1f} s window ({short} shorter), "
            f"of {len(classes)} class{'es' if len(classes) != 1 else ''}{held}; mixtures of "
            f"{NUM_MIX} different classes need at least {NUM_MIX}"
        )
    return clips


def list_path(key: str, index: Path, n: int, seed: int, sample: SampleConfig, where) -> Path:
    """Where a set's mixture list is kept: beside its index (shared with `pixelplayer eval`),
    or in `where` under the set's name."""
    path = mixture_list_path(index, n, NUM_MIX, seed, sample.audio_len)
    return path if where is None else Path(where) / f"{key.replace('_', '-')}-{path.name}"


# --- output -----------------------------------------------------------------------------------


def _cell(x: float) -> str:
    return f"{x:.2f}" if x is not None and math.isfinite(x) else "n/a"


def format_table(scored: dict[str, dict]) -> str:
    """Rows: test set x method; mean SDR, SIR, SAR, NSDR (dB) and the mixtures scored."""
    lines = [
        "| test set | method | SDR | SIR | SAR | NSDR | mixtures |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    titles = {**ORACLE_TITLES, **BASELINE_TITLES}
    for key, s in scored.items():
        for method, r in s["results"].items():
            count = str(r["count"])
            if r["count"] != r["n_items"]:
                count += f" of {r['n_items']}"
            cells = [_cell(r["mean"].get(k)) if r["count"] else "n/a" for k in METRICS]
            row = [SETS[key][1], titles.get(method, method), *cells, count]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------------


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


def bench(args: argparse.Namespace) -> dict:
    for flag, value in (("--n", args.n), ("--batch-size", args.batch_size)):
        if value < 1:
            raise PixelPlayerError(f"{flag} {value}: give at least 1")
    sets = {key: getattr(args, key) for key in SETS if getattr(args, key)}
    if not sets:
        flags = ", ".join(flag for flag, _ in SETS.values())
        raise PixelPlayerError(f"give at least one test set ({flags})")
    if not args.run and set(sets) != {"real"}:
        raise PixelPlayerError("the generated test sets score runs: give --run RUN")
    # every input checked before anything slow is loaded or scored
    indexes = {key: set_index(SETS[key][0], folder) for key, folder in sets.items()}
    cfgs = check_runs(args.run)
    sample = common_sample(args.run, cfgs)
    clips = {key: set_clips(SETS[key][0], index, sample) for key, index in indexes.items()}

    lists, datasets = {}, {}
    for key, index in indexes.items():  # drawn (or read back and checked) before any scoring
        lists[key] = list_path(key, index, args.n, args.seed, sample, args.mixtures)
        mixtures = fixed_mixtures(clips[key], sample, args.n, args.seed, lists[key])
        datasets[key] = MixDataset(clips[key], sample, mixtures=mixtures, train=False)

    runs = load_runs(args.run, cfgs, args.device)
    cfg = cfgs[0] if cfgs else Config()  # the STFT and rate of the baseline
    scored: dict[str, dict] = {}
    for key, dataset in datasets.items():
        separators = dict(runs)
        if key == "real":
            for name in REAL_ONLY:
                separators[name] = (
                    ORACLES[name] if name in ORACLES else baseline(name, cfg, args.device)
                )
        print(
            f"{SETS[key][1]}: {len(dataset)} mixtures of {indexes[key]} (list {lists[key]}), "
            f"{len(separators)} methods",
            flush=True,
        )
        results = evaluate(separators, dataset, args.batch_size, progress=not args.no_progress)
        scored[key] = {
            "folder": str(sets[key]),
            "index": str(indexes[key]),
            "mixture_list": str(lists[key]),
            "n": len(dataset),
            "results": results,
        }
    return {
        "runs": args.run,
        "n": args.n,
        "seed": args.seed,
        "num_mix": NUM_MIX,
        "sample": asdict(sample),
        "sets": scored,
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    try:
        report = bench(args)
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
