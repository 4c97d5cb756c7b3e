"""How trained runs generalize: every run scored on the same fixed two-clip test mixtures of
several test sets (in-distribution, held-out sounds, pictures or both, real footage).

A test set is a prepared folder: its test split (test.csv), or all its clips (all.csv) when it
has no test.csv. Each set's mixture list is drawn once and kept beside its index where
`pixelplayer eval` keeps it (DIR/mixtures/; `pixelplayer eval RUN --data DIR --n N` scores the
same mixtures), or in a folder given; a second call reads it back. Runs are scored with their
own sample config, which must cut the same windows and frames; each by its main separator (a
PixelPlayer run's model, an AMnet run's `amnet`, an AV-MIML run's `miml`). On the real set the
classical baseline (`nmf-kmeans`) and the ideal binary mask (`ibm`) are scored beside them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from pathlib import Path

from pixelplayer.config import Config
from pixelplayer.data.dataset import MixDataset, SampleConfig, fixed_mixtures, usable_clips
from pixelplayer.data.index import Clip, parse_index, read_index
from pixelplayer.errors import PixelPlayerError
from pixelplayer.evaluate import METRICS, TITLES, evaluate, mixture_list_path, run_separators
from pixelplayer.run import Run
from pixelplayer.separation.separators import ORACLES, MixtureSeparator, baseline

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
        folder = Run(run)
        if not folder.exists():
            what = "not a run folder (no config)" if folder.folder.is_dir() else "no such folder"
            raise PixelPlayerError(f"--run {run}: {what}")
        if folder.folder.resolve() in seen:
            raise PixelPlayerError(f"--run {run}: given twice")
        seen.add(folder.folder.resolve())
    return [Run(run).config for run in runs]


def load_runs(
    runs: list[str], cfgs: list[Config], device: str | None
) -> dict[str, MixtureSeparator]:
    """label -> the main separator of each run ('model', 'amnet' or 'miml'), loaded as
    `pixelplayer eval` loads it."""
    separators: dict[str, MixtureSeparator] = {}
    names = [Path(r).name for r in runs]
    for run, name, cfg in zip(runs, names, cfgs, strict=True):
        offered = run_separators(run, device)
        main = next(iter(offered))
        label = cfg.model if main == "model" else main
        separators[f"{label} ({name if names.count(name) == 1 else run})"] = offered[main]()
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


def set_index(flag: str, folder: str | Path) -> Path:
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


def set_clips(flag: str, index: Path, sample: SampleConfig) -> list[Clip]:
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


def list_path(
    key: str, index: Path, n: int, seed: int, sample: SampleConfig, where: str | Path | None
) -> Path:
    """Where a set's mixture list is kept: beside its index (shared with `pixelplayer eval`),
    or in `where` under the set's name."""
    path = mixture_list_path(index, n, NUM_MIX, seed, sample.audio_len)
    return path if where is None else Path(where) / f"{key.replace('_', '-')}-{path.name}"


# --- scoring ----------------------------------------------------------------------------------


def score_sets(
    runs: list[str],
    sets: dict[str, str | Path],
    n: int = 300,
    seed: int = 0,
    mixtures: str | Path | None = None,
    batch_size: int = 16,
    device: str | None = None,
    progress: bool = True,
) -> dict:
    """Score `runs` on `n` mixtures of each test set (`sets`: a key of SETS -> its prepared
    folder) -> the report: the runs, the settings, the sample config, and per set its folder,
    index, mixture list, size and results (`pixelplayer.evaluate.evaluate`'s figures). Every
    input is checked, and every mixture list drawn or read back, before anything is loaded."""
    for flag, value in (("--n", n), ("--batch-size", batch_size)):
        if value < 1:
            raise PixelPlayerError(f"{flag} {value}: give at least 1")
    unknown = set(sets) - set(SETS)
    if unknown:
        raise PixelPlayerError(f"unknown test sets {sorted(unknown)}; choose from {list(SETS)}")
    if not sets:
        flags = ", ".join(flag for flag, _ in SETS.values())
        raise PixelPlayerError(f"give at least one test set ({flags})")
    if not runs and set(sets) != {"real"}:
        raise PixelPlayerError("the generated test sets score runs: give --run RUN")
    sets = {key: sets[key] for key in SETS if key in sets}  # in the order of the table
    indexes = {key: set_index(SETS[key][0], folder) for key, folder in sets.items()}
    cfgs = check_runs(runs)
    sample = common_sample(runs, cfgs)
    clips = {key: set_clips(SETS[key][0], index, sample) for key, index in indexes.items()}
    lists, datasets = {}, {}
    for key, index in indexes.items():
        lists[key] = list_path(key, index, n, seed, sample, mixtures)
        drawn = fixed_mixtures(clips[key], sample, n, seed, lists[key])
        datasets[key] = MixDataset(clips[key], sample, mixtures=drawn, train=False)

    loaded = load_runs(runs, cfgs, device)
    cfg = cfgs[0] if cfgs else Config()  # the STFT and rate of the baseline
    scored: dict[str, dict] = {}
    for key, dataset in datasets.items():
        separators = dict(loaded)
        if key == "real":
            for name in REAL_ONLY:
                separators[name] = ORACLES[name] if name in ORACLES else baseline(name, cfg, device)
        if progress:
            print(
                f"{SETS[key][1]}: {len(dataset)} mixtures of {indexes[key]} (list {lists[key]}), "
                f"{len(separators)} methods",
                flush=True,
            )
        scored[key] = {
            "folder": str(sets[key]),
            "index": str(indexes[key]),
            "mixture_list": str(lists[key]),
            "n": len(dataset),
            "results": evaluate(separators, dataset, batch_size, progress=progress),
        }
    return {
        "runs": list(runs),
        "n": n,
        "seed": seed,
        "num_mix": NUM_MIX,
        "sample": asdict(sample),
        "sets": scored,
    }


def _cell(x: float | None) -> str:
    return f"{x:.2f}" if x is not None and math.isfinite(x) else "n/a"


def format_table(scored: dict[str, dict]) -> str:
    """A Markdown table of a report's sets: a row per test set and method, the mean SDR, SIR,
    SAR, NSDR (dB) and the mixtures scored."""
    lines = [
        "| test set | method | SDR | SIR | SAR | NSDR | mixtures |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for key, s in scored.items():
        for method, r in s["results"].items():
            count = str(r["count"])
            if r["count"] != r["n_items"]:
                count += f" of {r['n_items']}"
            cells = [_cell(r["mean"].get(k)) if r["count"] else "n/a" for k in METRICS]
            row = [SETS[key][1], TITLES.get(method, method), *cells, count]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
