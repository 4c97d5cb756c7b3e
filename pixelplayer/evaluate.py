"""`pixelplayer eval`: score separators on a fixed list of test mixtures.

Every separator (a trained run, the oracles, later NMF and AV-MIML) is scored by the same code
on the same mixtures: SDR, SIR, SAR of each estimate, the SDR of the mixture itself, and
NSDR = SDR - SDR(mixture). Mixtures that cannot be scored are counted with their reason.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from pixelplayer.config import Config, load_config
from pixelplayer.data.dataset import MixDataset, SampleConfig, fixed_mixtures
from pixelplayer.data.index import read_index, resolve_index
from pixelplayer.errors import PixelPlayerError
from pixelplayer.metrics import aggregate, score_batch
from pixelplayer.separators import ORACLE_TITLES, ORACLES, MaskModelSeparator, Separator

METRICS = ("sdr", "sir", "sar", "nsdr")


def mixture_list_path(index: Path, n: int, num_mix: int, seed: int) -> Path:
    """Beside the index, so every run evaluated on this data shares the list."""
    return index.parent / "mixtures" / f"{index.stem}-{num_mix}mix-{n}-seed{seed}.json"


def evaluate(
    separators: dict[str, Separator],
    dataset: MixDataset,
    batch_size: int = 16,
    workers: int = 0,
    progress: bool = True,
) -> dict[str, dict]:
    """Score every separator on every mixture of `dataset`; returns name -> aggregate figures."""
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    scores: dict[str, list] = {name: [] for name in separators}
    classes = []
    with tqdm(total=len(dataset), unit="mix", desc="evaluating", disable=not progress) as bar:
        for batch in loader:
            for name, separate in separators.items():
                est = separate(batch)
                scores[name].append(score_batch(batch["audios"], est, batch["mix"]))
            classes.append(batch["classes"])
            bar.update(len(batch["mix"]))
    labels = np.array(dataset.classes)[torch.cat(classes).numpy()]  # (items, N)
    return {name: aggregate(s, classes=labels) for name, s in scores.items()}


def format_table(results: dict[str, dict], titles: dict[str, str] | None = None) -> str:
    """A Markdown table: one row per separator, mean (median) of each metric."""
    titles = titles or {}
    head = "| separator | SDR | SIR | SAR | NSDR | scored | not scored |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        cells = [f"{r['mean'][k]:.2f} ({r['median'][k]:.2f})" for k in METRICS]
        skipped = ", ".join(f"{v} {k}" for k, v in r["unscored"].items()) or "0"
        row = [titles.get(name, name), *cells, str(r["count"]), skipped]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def add_arguments(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="score a trained run and the oracles on fixed test mixtures",
        description=(
            "Score separators on a fixed list of test mixtures (written beside the index on "
            "first use and reused, so every method sees the same mixtures): SDR, SIR, SAR, "
            "NSDR, mean and median, per class. Writes metrics.json and metrics.md."
        ),
    )
    p.add_argument("run", nargs="?", help="run folder of a trained model (omit for oracles only)")
    p.add_argument("--data", required=True, help="prepared folder or index csv (test split)")
    p.add_argument("--split", default="test", help="which split of a prepared folder (test)")
    p.add_argument(
        "--separator",
        default=None,
        help="comma list of separators: model, ibm, irm, mixture (default: all that apply)",
    )
    p.add_argument("--n", type=int, default=300, help="number of test mixtures (300)")
    p.add_argument("--num-mix", type=int, default=2, help="sources per mixture (2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the mixture list (0)")
    p.add_argument("--checkpoint", default="best.pt", help="checkpoint in the run (best.pt)")
    p.add_argument(
        "--threshold",
        default="config",
        help="binary masks: threshold on the predicted probability, or 'none' for soft masks "
        "(default: the run's train.mask_threshold)",
    )
    p.add_argument("--out", help="where to write metrics (default: RUN/eval)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def _threshold(text: str) -> float | None | str:
    if text in ("config", "none"):
        return None if text == "none" else text
    try:
        return float(text)
    except ValueError as exc:
        raise PixelPlayerError(f"--threshold {text!r}: give a number, 'none' or 'config'") from exc


def run(args: argparse.Namespace) -> int:
    cfg = load_config(Path(args.run) / "config.yaml") if args.run else Config()
    names = args.separator.split(",") if args.separator else (["model"] if args.run else [])
    if not args.separator:
        names += list(ORACLES)
    unknown = [n for n in names if n != "model" and n not in ORACLES]
    if unknown:
        raise PixelPlayerError(
            f"unknown separator {unknown[0]!r}; choose from model, {', '.join(ORACLES)}"
        )
    if "model" in names and not args.run:
        raise PixelPlayerError("the 'model' separator needs a RUN folder")
    separators: dict[str, Separator] = {}
    titles = dict(ORACLE_TITLES)
    for name in names:
        if name == "model":
            model_name = f"{cfg.model} ({Path(args.run).name})"
            separators[model_name] = MaskModelSeparator.from_run(
                args.run, args.checkpoint, device=args.device, threshold=_threshold(args.threshold)
            )
        else:
            separators[name] = ORACLES[name]

    index = resolve_index(args.data, args.split)
    sample = SampleConfig(**{**cfg.sample.__dict__, "num_mix": args.num_mix})
    clips = read_index(index)
    mixtures = fixed_mixtures(
        clips, sample, args.n, args.seed, mixture_list_path(index, args.n, args.num_mix, args.seed)
    )
    dataset = MixDataset(clips, sample, mixtures=mixtures, train=False)
    results = evaluate(separators, dataset, args.batch_size, progress=not args.no_progress)

    out = Path(args.out) if args.out else (Path(args.run) / "eval" if args.run else None)
    table = format_table(results, titles)
    print(table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        meta = {"index": str(index), "n": len(mixtures), "num_mix": args.num_mix, "seed": args.seed}
        (out / "metrics.json").write_text(json.dumps({**meta, "results": results}, indent=1))
        (out / "metrics.md").write_text(
            f"# Evaluation\n\n{len(mixtures)} mixtures of {args.num_mix} sources from `{index}`, "
            f"seed {args.seed}. Mean (median) in dB.\n\n{table}\n"
        )
        print(f"metrics written to {out}/metrics.json and metrics.md")
    return 0
