"""`pixelplayer eval`: score separators on a fixed list of test mixtures.

Every separator (a trained run, the oracles, later NMF and AV-MIML) is scored by the same code
on the same mixtures: SDR, SIR, SAR of each estimate, the SDR of the mixture itself, and
NSDR = SDR - SDR(mixture). Mixtures that cannot be scored are counted with their reason.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from pixelplayer import miml
from pixelplayer.config import Config
from pixelplayer.data.dataset import MixDataset, SampleConfig, fixed_mixtures
from pixelplayer.data.index import read_index, resolve_index
from pixelplayer.errors import PixelPlayerError
from pixelplayer.metrics import aggregate, best_permutation, score_batch
from pixelplayer.mixsep import masks_to_waves, targets
from pixelplayer.models.registry import get_class
from pixelplayer.run import Run, as_run
from pixelplayer.separation.page import EvalItem, write_eval_page
from pixelplayer.separation.separators import (
    BASELINE_TITLES,
    ORACLE_TITLES,
    ORACLES,
    MaskModelSeparator,
    MixtureSeparator,
    baseline,
)

METRICS = ("sdr", "sir", "sar", "nsdr")
TITLES = {**ORACLE_TITLES, **BASELINE_TITLES}  # table rows of the separators that need no run


def mixture_list_path(
    index: Path, n: int, num_mix: int, seed: int, audio_len: int, same_class: bool = False
) -> Path:
    """Beside the index, so every run evaluated on this data shares the list. The window
    length is part of the name: windows are drawn to fit inside their clips."""
    kind = "-sameclass" if same_class else ""
    name = f"{index.stem}-{num_mix}mix{kind}-{n}-seed{seed}-{audio_len}.json"
    return index.parent / "mixtures" / name


def eval_mixtures(
    data: str | Path,
    split: str,
    sample: SampleConfig,
    n: int,
    seed: int = 0,
    same_class: bool = False,
) -> tuple[Path, MixDataset]:
    """The fixed test mixtures of `sample.num_mix` clips from a prepared folder's `split` (or an
    index csv) -> (the index, the dataset of those mixtures). The list is kept beside the
    index (`mixture_list_path`), so every method and run sees the same mixtures."""
    index = resolve_index(data, split)
    clips = read_index(index)
    path = mixture_list_path(index, n, sample.num_mix, seed, sample.audio_len, same_class)
    mixtures = fixed_mixtures(clips, sample, n, seed, path)
    return index, MixDataset(clips, sample, mixtures=mixtures, train=False)


def evaluate(
    separators: dict[str, MixtureSeparator],
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


def run_separators(
    run: str | Path | Run, device: torch.device | str | None = None, **mask_options
) -> dict[str, Callable[[], MixtureSeparator]]:
    """What a run folder offers, by `--separator` name -> a zero-argument builder.

    A mask model (PixelPlayer and kin) offers 'model', loaded only when built; an AMnet run
    'amnet' and 'appearance' (its stage 1). A run of
    `model: miml` offers the separators of `pixelplayer.miml.run_separators` ('miml',
    'exemplar', ...). `mask_options` go to
    `MaskModelSeparator.from_run` (checkpoint, threshold, combine). A run file that torch
    cannot read is reported as one line, here or when built; a built mask model must be the
    model config.yaml names.
    """
    run = as_run(run)
    cfg = run.config
    if cfg.model == "miml":
        found = _readable(run, miml.run_separators, run.folder, device)
        return {name: (lambda sep=sep: sep) for name, sep in found.items()}

    def load(**options):
        def build() -> MaskModelSeparator:
            separator = _readable(
                run, MaskModelSeparator.from_run, run, device=device, **options, **mask_options
            )
            if not isinstance(separator.model, get_class(cfg.model)):
                raise PixelPlayerError(
                    f"{run.folder}: the checkpoint holds a {type(separator.model).__name__}, but "
                    f"the run's config.yaml says model {cfg.model!r}; give that model's checkpoint"
                )
            return separator

        return build

    if cfg.model == "amnet":  # and its stage 1 alone, scored on the same mixtures
        return {"amnet": load(), "appearance": load(options={"stage": 1})}
    return {"model": load()}


def _readable(run: Run, build: Callable, *args, **kwargs):
    """`build(...)`, with a run file that torch cannot read (a truncated or foreign pickle, e.g.
    a miml run's dictionary.pt) reported as one line; the safe loaders run no code from it."""
    try:
        return build(*args, **kwargs)
    except (OSError, EOFError, KeyError, RuntimeError, pickle.UnpicklingError) as exc:
        first = (str(exc).strip() or type(exc).__name__).splitlines()[0].split(". ")[0]
        raise PixelPlayerError(
            f"{run.folder}: cannot load the run's files ({type(exc).__name__}: {first}); train "
            "it again"
        ) from exc


def choose_separators(
    run: str | Path | Run | None,
    names: list[str] | None = None,
    device: torch.device | str | None = None,
    **mask_options,
) -> dict[str, MixtureSeparator]:
    """The separators to score, by table row: `names` of the run's separators
    (`run_separators`), the oracles and the baselines; by default the run's and the oracles
    (baselines, slow, only when named). A run's rows are named after the run."""
    run = None if run is None else as_run(run)
    cfg = run.config if run is not None else Config()
    offered = run_separators(run, device, **mask_options) if run is not None else {}
    names = names or [*offered, *ORACLES]
    if "model" in names and run is None:
        raise PixelPlayerError("the 'model' separator needs a RUN folder")
    choices = [*offered, *ORACLES, *BASELINE_TITLES]
    unknown = [n for n in names if n not in choices]
    if unknown:
        options = ", ".join(choices)
        raise PixelPlayerError(f"unknown separator {unknown[0]!r}; choose from {options}")
    separators: dict[str, MixtureSeparator] = {}
    for name in names:
        if name in offered:
            label = cfg.model if name == "model" else name
            separators[f"{label} ({run.folder.name})"] = offered[name]()
        elif name in ORACLES:
            separators[name] = ORACLES[name]
        else:
            separators[name] = baseline(name, cfg, device)
    return separators


def write_metrics(
    out: Path,
    results: dict[str, dict],
    table: str,
    index: Path,
    n: int,
    num_mix: int,
    seed: int,
    same_class: bool = False,
) -> None:
    """OUT/metrics.json (what was scored, and the results) and OUT/metrics.md (the table)."""
    out.mkdir(parents=True, exist_ok=True)
    meta = {"index": str(index), "n": n, "num_mix": num_mix, "seed": seed}
    meta["same_class"] = same_class
    (out / "metrics.json").write_text(json.dumps({**meta, "results": results}, indent=1))
    (out / "metrics.md").write_text(
        f"# Evaluation\n\n{n} mixtures of {num_mix} sources "
        f"{'of one class' if same_class else ''} from `{index}`, "
        f"seed {seed}. Mean (median) in dB.\n\n{table}\n"
    )


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
