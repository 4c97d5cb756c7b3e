"""Train AV-MIML on a prepared dataset and score its separators on the evaluator's test list.

    python benchmarks/bench_miml.py [--data /work/exp/prepared] [--run DIR] [--n 300]
                                    [--set model_kwargs.label_noise=0.2 ...] [--denoise 16]
                                    [--pixelplayer PP_RUN]

Trains `miml` with the dataset-labels labeler (resumes when RUN holds the run),
then runs `pixelplayer eval RUN --n N` for miml, exemplar, unmatched and gaussian, the NMF +
MFCC + k-means baseline and the oracles on the same mixtures, and prints one line per
separator: mean SDR, SIR, SAR, NSDR in dB, then AV-MIML's margin over NMF + k-means. With
--denoise K it also prints the visually aided denoising NSDR (white noise at 0 dB SNR) on K
test clips. With --pixelplayer, a trained PixelPlayer run is scored on the same mixtures too:
AV-MIML is then trained on that run's window length (`sample.audio_len`), as mixture lists are
keyed by it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from pixelplayer.cli import main as cli
from pixelplayer.miml import SEPARATORS

CONFIG = "miml"


def denoise_line(run: Path, data: Path, count: int) -> str:
    """Mean NSDR of denoising `count` test clips (6 s windows) with their class's bases."""
    from pixelplayer.config import load_config
    from pixelplayer.data.dataset import read_window
    from pixelplayer.data.index import read_index, resolve_index
    from pixelplayer.metrics import score_batch
    from pixelplayer.miml import add_white_noise, denoise

    cfg = load_config(run / "config.yaml")
    dictionary = torch.load(run / "dictionary.pt", weights_only=True)
    clips = read_index(resolve_index(data, "test"))[::7][:count]
    clean = torch.stack([torch.from_numpy(read_window(c, 0.0, cfg.sample)) for c in clips])
    noisy = add_white_noise(clean, 0.0, seed=0)
    est = denoise(noisy, [dictionary["bases"][c.cls] for c in clips], cfg.spec)
    s = score_batch(clean[:, None], est[:, None], noisy)
    return f"denoising (0 dB white noise, {len(clips)} clips): NSDR {np.nanmean(s['nsdr']):.2f} dB"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="/work/exp/prepared")
    p.add_argument("--run", default="/work/exp/runs/miml")
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--denoise", type=int, default=0, metavar="K")
    p.add_argument("--pixelplayer", metavar="PP_RUN", help="also score this PixelPlayer run")
    p.add_argument("--device")
    args = p.parse_args()
    dev = ["--device", args.device] if args.device else []
    if args.pixelplayer:
        from pixelplayer.config import load_config

        length = load_config(Path(args.pixelplayer) / "config.yaml").sample.audio_len
        args.set.append(f"sample.audio_len={length}")
    sets = [a for s in args.set for a in ("--set", s)]
    started = time.perf_counter()
    train = ["train", "--config", str(CONFIG), "--data", args.data, "--out", args.run]
    assert cli([*train, "--no-progress", *sets, *dev]) == 0
    trained = time.perf_counter()
    ev = ["eval", args.run, "--data", args.data, "--n", str(args.n), "--no-progress"]
    names = [*SEPARATORS, "nmf-kmeans", "ibm", "irm", "mixture"]
    assert cli([*ev, "--separator", ",".join(names), *dev]) == 0
    results = json.loads((Path(args.run) / "eval" / "metrics.json").read_text())["results"]
    if args.pixelplayer:
        out = Path(args.run) / "eval-pixelplayer"
        ev[1] = args.pixelplayer
        assert cli([*ev, "--separator", "model", "--out", str(out), *dev]) == 0
        results.update(json.loads((out / "metrics.json").read_text())["results"])
    done = time.perf_counter()
    print(f"\nAV-MIML on {args.data}, {args.n} test mixtures of 2 (mean dB):")
    for name, r in results.items():
        m = r["mean"]
        print(
            f"{name:28s} SDR {m['sdr']:6.2f}  SIR {m['sir']:6.2f}  SAR {m['sar']:6.2f}  "
            f"NSDR {m['nsdr']:6.2f}"
        )
    miml = next(r["mean"]["sdr"] for name, r in results.items() if name.startswith("miml"))
    margin = miml - results["nmf-kmeans"]["mean"]["sdr"]
    verdict = "met" if margin >= 2.0 else "NOT met"
    print(f"AV-MIML - NMF + k-means: {margin:+.2f} dB SDR (target >= +2.0 dB: {verdict})")
    print(f"train {trained - started:.0f} s, eval {done - trained:.0f} s")
    if args.denoise:
        print(denoise_line(Path(args.run), Path(args.data), args.denoise))


if __name__ == "__main__":
    main()
