"""`pixelplayer eval`: parse the arguments and score with `pixelplayer.evaluate`."""

from __future__ import annotations

import argparse
from pathlib import Path

from pixelplayer import checks
from pixelplayer.config import Config
from pixelplayer.data.dataset import SampleConfig
from pixelplayer.errors import PixelPlayerError
from pixelplayer.evaluate import (
    TITLES,
    choose_separators,
    eval_mixtures,
    evaluate,
    format_table,
    write_html,
    write_metrics,
)
from pixelplayer.run import Run
from pixelplayer.separation.separators import MaskModelSeparator


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
        help="comma list of separators: model (an amnet run offers amnet and appearance, its "
        "stage 1; a miml run miml, exemplar, ...), ibm, irm, "
        "mixture, nmf-kmeans (default: the run's and the oracles; nmf-kmeans, slow, only when "
        "named)",
    )
    p.add_argument("--n", type=int, default=300, help="number of test mixtures (300)")
    p.add_argument("--num-mix", type=int, default=2, help="sources per mixture (2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the mixture list (0)")
    p.add_argument(
        "--same-class",
        action="store_true",
        help="mix clips of one class (two players that look alike) instead of distinct classes",
    )
    p.add_argument("--checkpoint", default="best.pt", help="checkpoint in the run (best.pt)")
    p.add_argument(
        "--threshold",
        default="config",
        help="binary masks: threshold on the predicted probability, or 'none' for soft masks "
        "(default: the run's train.mask_threshold)",
    )
    p.add_argument(
        "--combine",
        default="config",
        choices=["config", "independent", "softmax"],
        help="how the sources' logits become masks: a sigmoid each, or a softmax that shares "
        "out every bin (default: the run's spec.combine)",
    )
    p.add_argument("--out", help="where to write metrics (default: RUN/eval)")
    p.add_argument(
        "--html",
        type=int,
        nargs="?",
        const=16,
        metavar="N",
        help="also write OUT/html/index.html: frames, audio, spectrograms, masks and scores of "
        "the model on the first N mixtures (16)",
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def _threshold(text: str) -> float | None | str:
    if text in ("config", "none"):
        return None if text == "none" else text
    try:
        value = float(text)
    except ValueError as exc:
        raise PixelPlayerError(f"--threshold {text!r}: give a number, 'none' or 'config'") from exc
    return checks.number("--threshold", value, 0, 1)  # a probability: nan or 2 keep no bin


def run(args: argparse.Namespace) -> int:
    checks.device(args.device)
    for flag, value in (
        ("--n", args.n),
        ("--num-mix", args.num_mix),
        ("--batch-size", args.batch_size),
    ):
        if value < 1:
            raise PixelPlayerError(f"{flag} {value}: give at least 1")
    checks.number("--n", args.n, 1, 1_000_000, integer=True)
    checks.number("--num-mix", args.num_mix, 1, 64, integer=True)
    checks.number("--batch-size", args.batch_size, 1, 65536, integer=True)
    checks.number("--html", args.html, 0, 10_000, integer=True)
    run = Run(args.run) if args.run else None
    cfg = run.config if run is not None else Config()
    names = args.separator.split(",") if args.separator else None
    options = {"threshold": _threshold(args.threshold), "combine": args.combine}
    separators = choose_separators(run, names, args.device, checkpoint=args.checkpoint, **options)
    model = next((s for s in separators.values() if isinstance(s, MaskModelSeparator)), None)
    if args.html is not None and model is None:
        raise PixelPlayerError("--html shows a model's masks: give a RUN and the model separator")

    same = 1.0 if args.same_class else 0.0
    sample = SampleConfig(**{**cfg.sample.__dict__, "num_mix": args.num_mix, "same_class": same})
    index, dataset = eval_mixtures(
        args.data, args.split, sample, args.n, args.seed, args.same_class
    )
    results = evaluate(separators, dataset, args.batch_size, progress=not args.no_progress)

    out = Path(args.out) if args.out else (run.eval_dir if run is not None else None)
    table = format_table(results, TITLES)
    print(table)
    if out is not None:
        n = len(dataset.mixtures)
        write_metrics(out, results, table, index, n, args.num_mix, args.seed, args.same_class)
        print(f"metrics written to {out}/metrics.json and metrics.md")
        if args.html is not None:
            title = f"{cfg.model} ({run.folder.name}) on {index}"
            page = write_html(out / "html", model, dataset, args.html, title, args.batch_size)
            print(f"validation page written to {page}")
    return 0
