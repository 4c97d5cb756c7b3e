"""Train PixelPlayer on the default generated dataset and score it against the oracles.

    python benchmarks/bench_pixelplayer.py [--work DIR] [--minutes 20] [--table1] [--layout-ceiling]

Generates the default dataset (10 classes x 40 clips) and prepares it when DIR lacks it, trains
the CPU preset for the given minutes, and evaluates on 300 two-source test mixtures of clips
never seen in training. Prints the model's NSDR and SDR, and its gap to the ideal binary mask.
The target: NSDR >= 8 dB and SDR no more than 6 dB below the ideal binary mask.

With --table1 it trains the paper's Table 1 variants instead (binary vs ratio mask, linear vs
log frequency), each with the same data and budget, and prints one row per variant.

With --layout-ceiling it trains nothing: it prints the SDR of the ideal masks computed on the
net's layout (the preset's 256 log-frequency rows, and others) and mapped back to the linear
bins, on the preset's test mixtures: the best a model predicting on that layout can do.

With --class-colour-frames every clip's frames become one flat colour per class (in training
and in evaluation), so seeing which instrument plays is trivial: the difference to the preset
is what learning to see costs, the rest of the gap to the ideal mask is the sound net's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pixelplayer.cli import main as cli

CONFIG = "pixelplayer-cpu"
# every row trains with the paper's loss on each source's mask, whatever the preset's
TABLE1 = {
    f"{mask}, {scale}": [f"spec.mask={mask}", f"spec.log_freq={scale == 'log'}", "spec.loss=bce"]
    for mask in ("binary", "ratio")
    for scale in ("linear", "log")
}


def ensure_data(work: Path) -> Path:
    prepared = work / "prepared"
    if not (prepared / "test.csv").is_file():
        assert cli(["data", "synth", str(work / "synth")]) == 0
        assert cli(["data", "prepare", str(work / "synth" / "videos"), str(prepared)]) == 0
    return prepared


def train_and_eval(prepared: Path, run: Path, minutes: float, overrides: list[str], n: int):
    sets = [a for o in [*overrides, f"train.max_minutes={minutes}"] for a in ("--set", o)]
    args = ["train", "--config", str(CONFIG), "--data", str(prepared), "--out", str(run)]
    assert cli([*args, *sets, "--no-progress"]) == 0
    assert cli(["eval", str(run), "--data", str(prepared), "--n", str(n), "--no-progress"]) == 0
    return json.loads((run / "eval" / "metrics.json").read_text())["results"]


def colour_frames_by_class() -> None:
    """Make every MixDataset item's frames a flat colour of its clip's class (this process and
    the data loader workers it forks)."""
    import numpy as np
    import torch

    from pixelplayer.data.dataset import MixDataset

    colours = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (256, 3), np.uint8))
    get_item = MixDataset.__getitem__

    def coloured(self: MixDataset, i: int) -> dict:
        item = get_item(self, i)
        item["frames"][:] = colours[item["classes"]].view(-1, 3, 1, 1, 1)  # (N, 3, T, S, S)
        return item

    MixDataset.__getitem__ = coloured


def layout_ceiling(prepared: Path, n: int) -> None:
    import numpy as np
    import torch

    from pixelplayer.config import load_config
    from pixelplayer.data.dataset import MixDataset, fixed_mixtures
    from pixelplayer.data.index import read_index, resolve_index
    from pixelplayer.evaluate import mixture_list_path
    from pixelplayer.metrics import score_batch
    from pixelplayer.mixsep import SpecConfig, masks_to_waves, network_input, targets

    cfg = load_config(CONFIG)
    index = resolve_index(prepared, "test")
    clips = read_index(index)
    path = mixture_list_path(index, n, 2, 0, cfg.sample.audio_len)
    data = MixDataset(clips, cfg.sample, mixtures=fixed_mixtures(clips, cfg.sample, n, 0, path))
    batch = torch.utils.data.default_collate([data[i] for i in range(len(data))])
    print(f"ideal masks on the net's layout, {n} test mixtures of the CPU preset (mean SDR, dB)")
    for log_freq, rows in ((True, 256), (True, 512), (False, 512)):
        for mask in ("binary", "ratio"):
            spec = SpecConfig(
                **{**cfg.spec.__dict__, "log_freq": log_freq, "freq_rows": rows, "mask": mask}
            )
            stft, mag = network_input(batch["mix"], spec)
            masks, _ = targets(batch["audios"], mag, spec)
            est = masks_to_waves(masks, stft, batch["mix"].shape[-1], spec)
            sdr = np.nanmean(score_batch(batch["audios"], est, batch["mix"])["sdr"])
            layout = f"{rows} log-frequency rows" if log_freq else "the 512 linear bins"
            print(f"  {mask} mask on {layout}: SDR {sdr:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="bench-work", help="data and runs go here")
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget per model")
    parser.add_argument("--n", type=int, default=300, help="test mixtures")
    parser.add_argument("--table1", action="store_true", help="the mask / frequency variants")
    parser.add_argument("--run", default="run-cpu", help="run folder name under --work")
    parser.add_argument(
        "--layout-ceiling", action="store_true", help="only the ideal masks on the net's layout"
    )
    parser.add_argument(
        "--class-colour-frames",
        action="store_true",
        help="diagnostic: frames replaced by a flat colour per class (vision made trivial)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for every model trained, as `pixelplayer train --set`",
    )
    args = parser.parse_args()
    work = Path(args.work)
    prepared = ensure_data(work)
    if args.layout_ceiling:
        layout_ceiling(prepared, args.n)
        return
    if args.class_colour_frames:
        colour_frames_by_class()
    variants = TABLE1 if args.table1 else {"cpu preset": []}
    rows = []
    for name, overrides in variants.items():
        run = work / ("table1-" + name.replace(", ", "-") if args.table1 else args.run)
        results = train_and_eval(prepared, run, args.minutes, [*overrides, *args.set], args.n)
        model = next(v for k, v in results.items() if k.startswith("pixelplayer"))
        rows.append((name, model, results["ibm"], results["irm"]))
    print(f"\n{args.n} test mixtures of 2 sources; {args.minutes:g} min of training per model")
    print("| variant | SDR | SIR | SAR | NSDR | IBM SDR | gap to IBM |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, m, ibm, _ in rows:
        mean = m["mean"]
        gap = ibm["mean"]["sdr"] - mean["sdr"]
        print(
            f"| {name} | {mean['sdr']:.2f} | {mean['sir']:.2f} | {mean['sar']:.2f} | "
            f"{mean['nsdr']:.2f} | {ibm['mean']['sdr']:.2f} | {gap:.2f} |"
        )
    if not args.table1:
        name, m, ibm, _ = rows[0]
        ok = m["mean"]["nsdr"] >= 8 and ibm["mean"]["sdr"] - m["mean"]["sdr"] <= 6
        print(
            f"pixelplayer cpu preset: NSDR {m['mean']['nsdr']:.2f} dB, SDR {m['mean']['sdr']:.2f}"
            f" dB, IBM {ibm['mean']['sdr']:.2f} dB -> target {'met' if ok else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
