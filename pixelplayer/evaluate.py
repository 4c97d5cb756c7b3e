"""`pixelplayer eval`: score separators on a fixed list of test mixtures.

Every separator (a trained run, the oracles, later NMF and AV-MIML) is scored by the same code
on the same mixtures: SDR, SIR, SAR of each estimate, the SDR of the mixture itself, and
NSDR = SDR - SDR(mixture). Mixtures that cannot be scored are counted with their reason.
"""

from __future__ import annotations

import argparse
import json
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from pixelplayer import checks
from pixelplayer.config import Config, load_config
from pixelplayer.data.dataset import (
    MixDataset,
    SampleConfig,
    fixed_mixtures,
)
from pixelplayer.data.index import read_index, resolve_index
from pixelplayer.errors import PixelPlayerError
from pixelplayer.metrics import aggregate, best_permutation, score_batch
from pixelplayer.mixsep import masks_to_waves, targets
from pixelplayer.models.registry import get_class
from pixelplayer.separation.page import EvalItem, write_eval_page
from pixelplayer.separation.separators import (
    BASELINE_TITLES,
    ORACLE_TITLES,
    ORACLES,
    MaskModelSeparator,
    Separator,
    baseline,
    run_separators,
)

METRICS = ("sdr", "sir", "sar", "nsdr")


def mixture_list_path(
    index: Path, n: int, num_mix: int, seed: int, audio_len: int, same_class: bool = False
) -> Path:
    """Beside the index, so every run evaluated on this data shares the list. The window
    length is part of the name: windows are drawn to fit inside their clips."""
    kind = "-sameclass" if same_class else ""
    name = f"{index.stem}-{num_mix}mix{kind}-{n}-seed{seed}-{audio_len}.json"
    return index.parent / "mixtures" / name


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
                if getattr(separate, "permutation_invariant", False):
                    est = best_order(batch["audios"], est)
                scores[name].append(score_batch(batch["audios"], est, batch["mix"]))
            classes.append(batch["classes"])
            bar.update(len(batch["mix"]))
    labels = np.array(dataset.classes)[torch.cat(classes).numpy()]  # (items, N)
    return {name: aggregate(s, classes=labels) for name, s in scores.items()}


def best_order(ref: torch.Tensor, est: torch.Tensor) -> torch.Tensor:
    """(B, N, L) estimates reordered to the assignment to references (B, N, L) of best mean SDR.

    For separators with `permutation_invariant = True`, whose outputs have no set order: the
    papers scored unsupervised baselines so.
    """
    perm = torch.as_tensor(best_permutation(ref, est), device=est.device)  # (B, N)
    return est[torch.arange(len(est), device=est.device)[:, None], perm]


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


def write_html(
    out: Path,
    separator: MaskModelSeparator,
    dataset: MixDataset,
    n: int,
    title: str,
    batch_size: int = 16,
) -> Path:
    """The validation page of Sound of Pixels for the first `n` mixtures of `dataset`."""
    items: list[EvalItem] = []
    for batch in DataLoader(Subset(dataset, range(min(n, len(dataset)))), batch_size=batch_size):
        items += _page_items(separator, batch, dataset, first=len(items))
    return write_eval_page(out, items, separator.spec, title)


def _page_items(
    separator: MaskModelSeparator, batch: dict, dataset: MixDataset, first: int
) -> list[EvalItem]:
    masks, spec = separator.masks(batch)
    mix_mag = separator.spec.to_net(spec.abs().unsqueeze(1))
    gt_masks, _ = targets(batch["audios"].to(spec.device), mix_mag, separator.spec)
    est = masks_to_waves(masks, spec, batch["mix"].shape[-1], separator.spec).cpu()
    scores = score_batch(batch["audios"], est, batch["mix"])
    # ImageNet-normalised (B, N, 3, T, H, W) back to (B, N, T, H, W, 3) pixels
    frames = batch["frames"].permute(0, 1, 3, 4, 5, 2).numpy()  # uint8 pixels
    return [
        EvalItem(
            sr=dataset.cfg.sr,
            mixture=batch["mix"][b].numpy(),
            sources=batch["audios"][b].numpy(),
            estimates=est[b].numpy(),
            pred_masks=masks[b].cpu().numpy(),
            gt_masks=gt_masks[b].cpu().numpy(),
            frames=frames[b],
            metrics={k: scores[k][b] for k in METRICS},
            labels=[dataset.classes[c] for c in batch["classes"][b]],
            name=" + ".join(dataset.mixture(first + b).videos),
        )
        for b in range(len(batch["mix"]))
    ]


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


def _loaded(run: str, build: Callable, *args, **kwargs):
    """`build(...)`, with a run file that torch cannot read (a truncated or foreign pickle, e.g.
    a miml run's dictionary.pt) reported as one line; the safe loaders run no code from it."""
    try:
        return build(*args, **kwargs)
    except (OSError, EOFError, KeyError, RuntimeError, pickle.UnpicklingError) as exc:
        first = (str(exc).strip() or type(exc).__name__).splitlines()[0].split(". ")[0]
        raise PixelPlayerError(
            f"{run}: cannot load the run's files ({type(exc).__name__}: {first}); train it again"
        ) from exc


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
    cfg = load_config(Path(args.run) / "config.yaml") if args.run else Config()
    from_run = (
        _loaded(
            args.run,
            run_separators,
            args.run,
            cfg,
            args.device,
            checkpoint=args.checkpoint,
            threshold=_threshold(args.threshold),
            combine=args.combine,
        )
        if args.run
        else {}
    )
    # by default the run's separators and the oracles; baselines (slow) only when named
    names = args.separator.split(",") if args.separator else [*from_run, *ORACLES]
    if "model" in names and not args.run:
        raise PixelPlayerError("the 'model' separator needs a RUN folder")
    choices = [*from_run, *ORACLES, *BASELINE_TITLES]
    unknown = [n for n in names if n not in choices]
    if unknown:
        options = ", ".join(choices)
        raise PixelPlayerError(f"unknown separator {unknown[0]!r}; choose from {options}")
    separators: dict[str, Separator] = {}
    titles = {**ORACLE_TITLES, **BASELINE_TITLES}
    for name in names:
        if name in from_run:  # one row per run separator, named after the run
            label = cfg.model if name == "model" else name
            separator = _loaded(args.run, from_run[name])
            if isinstance(separator, MaskModelSeparator) and not isinstance(
                separator.model, get_class(cfg.model)
            ):
                raise PixelPlayerError(
                    f"{args.run}: the checkpoint holds a {type(separator.model).__name__}, but "
                    f"the run's config.yaml says model {cfg.model!r}; give that model's checkpoint"
                )
            separators[f"{label} ({Path(args.run).name})"] = separator
        elif name in ORACLES:
            separators[name] = ORACLES[name]
        else:
            separators[name] = baseline(name, cfg, args.device)
    model = next((s for s in separators.values() if isinstance(s, MaskModelSeparator)), None)
    if args.html is not None and model is None:
        raise PixelPlayerError("--html shows a model's masks: give a RUN and the model separator")

    index = resolve_index(args.data, args.split)
    same = 1.0 if args.same_class else 0.0
    sample = SampleConfig(**{**cfg.sample.__dict__, "num_mix": args.num_mix, "same_class": same})
    clips = read_index(index)
    path = mixture_list_path(
        index, args.n, args.num_mix, args.seed, sample.audio_len, args.same_class
    )
    mixtures = fixed_mixtures(clips, sample, args.n, args.seed, path)
    dataset = MixDataset(clips, sample, mixtures=mixtures, train=False)
    results = evaluate(separators, dataset, args.batch_size, progress=not args.no_progress)

    out = Path(args.out) if args.out else (Path(args.run) / "eval" if args.run else None)
    table = format_table(results, titles)
    print(table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        meta = {"index": str(index), "n": len(mixtures), "num_mix": args.num_mix, "seed": args.seed}
        meta["same_class"] = args.same_class
        (out / "metrics.json").write_text(json.dumps({**meta, "results": results}, indent=1))
        (out / "metrics.md").write_text(
            f"# Evaluation\n\n{len(mixtures)} mixtures of {args.num_mix} sources "
            f"{'of one class' if args.same_class else ''} from `{index}`, "
            f"seed {args.seed}. Mean (median) in dB.\n\n{table}\n"
        )
        print(f"metrics written to {out}/metrics.json and metrics.md")
        if args.html is not None:
            title = f"{cfg.model} ({Path(args.run).name}) on {index}"
            page = write_html(out / "html", model, dataset, args.html, title, args.batch_size)
            print(f"validation page written to {page}")
    return 0
