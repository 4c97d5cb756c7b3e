"""Train PixelPlayer on the default generated dataset and score it against the oracles.

    python benchmarks/bench_pixelplayer.py [--work DIR] [--minutes 20] [--table1]

Generates the default dataset (10 classes x 40 clips) and prepares it when DIR lacks it, trains
the CPU preset for the given minutes, and evaluates on 300 two-source test mixtures of clips
never seen in training. Prints the model's NSDR and SDR, and its gap to the ideal binary mask.
The target: NSDR >= 8 dB and SDR no more than 6 dB below the ideal binary mask.

With --table1 it trains the paper's Table 1 variants instead (binary vs ratio mask, linear vs
log frequency), each with the same data and budget, and prints one row per variant.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pixelplayer.cli import main as cli

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "pixelplayer-cpu.yaml"
TABLE1 = {
    "binary, linear": ["spec.mask=binary", "spec.log_freq=false"],
    "binary, log": ["spec.mask=binary", "spec.log_freq=true"],
    "ratio, linear": ["spec.mask=ratio", "spec.log_freq=false"],
    "ratio, log": ["spec.mask=ratio", "spec.log_freq=true"],
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="bench-work", help="data and runs go here")
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget per model")
    parser.add_argument("--n", type=int, default=300, help="test mixtures")
    parser.add_argument("--table1", action="store_true", help="the mask / frequency variants")
    parser.add_argument("--run", default="run-cpu", help="run folder name under --work")
    args = parser.parse_args()
    work = Path(args.work)
    prepared = ensure_data(work)
    variants = TABLE1 if args.table1 else {"cpu preset": []}
    rows = []
    for name, overrides in variants.items():
        run = work / ("table1-" + name.replace(", ", "-") if args.table1 else args.run)
        results = train_and_eval(prepared, run, args.minutes, overrides, args.n)
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
