"""Time pixelplayer.metrics.bss_eval against mir_eval on realistic two-source separations.

    python benchmarks/bench_metrics.py [--items 1000] [--subset N] [--threads 1]

Scores `items` mixtures of two harmonic sources (vibrato, note envelopes, noise), 65535 samples
at 11025 Hz, whose estimates are the reference plus filtered interference plus noise, with
pixelplayer.metrics and with mir_eval (every item by default, about 2 minutes for 1,000; `--subset
N` gives mir_eval only the first N and extrapolates its rate per item). Prints one line: items/s
of each, the speed ratio, and the largest SDR/SIR/SAR difference in dB over the items both
scored. Target: >= 20x faster, within 0.05 dB.
Both run with the same thread count (default 1: on a shared 2-core box, multi-threaded BLAS and
FFTs fight other processes and both get slower and noisier).
"""

from __future__ import annotations

import argparse
import os
import time

SR = 11025


def make_batch(rng, n: int, length: int):
    """-> (ref, est), each (n, 2, length) float32, like decoded audio and a model's output."""
    import numpy as np
    from scipy.signal import lfilter

    t = np.arange(length) / SR
    ref = np.zeros((n, 2, length))
    for i in range(n):
        for j in range(2):
            f0 = rng.uniform(80, 800) * (
                1 + rng.uniform(0.005, 0.02) * np.sin(2 * np.pi * rng.uniform(4, 7) * t)
            )
            phase = 2 * np.pi * np.cumsum(f0) / SR
            tilt = rng.uniform(0.7, 1.5)
            n_harm = int(min(12, SR / 2 / f0.max()))
            wav = sum(np.sin(h * phase + rng.uniform(0, 6)) / h**tilt for h in range(1, n_harm + 1))
            # a few notes: attack/decay envelopes at random onsets
            onsets = np.sort(rng.uniform(0, length / SR, rng.integers(2, 6)))
            env = sum(
                np.where(
                    t >= o, np.exp(-(t - o) * rng.uniform(0.5, 3)) * (1 - np.exp(-(t - o) * 80)), 0
                )
                for o in onsets
            )
            ref[i, j] = (0.2 * env + 0.02) * wav + 10 ** rng.uniform(
                -4, -2.5
            ) * rng.standard_normal(length)
    # estimate = reference + scaled, coloured interference + noise (artifacts)
    pole = rng.uniform(0.0, 0.9)
    leak = lfilter([1 - pole], [1, -pole], ref[:, ::-1], axis=-1)
    gain = rng.uniform(0.05, 0.5, (n, 2, 1))
    noise = rng.uniform(0.005, 0.05, (n, 2, 1)) * ref.std(-1, keepdims=True)
    est = ref + gain * leak + noise * rng.standard_normal(ref.shape)
    return ref.astype(np.float32), est.astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000, help="mixtures scored (default 1000)")
    parser.add_argument("--length", type=int, default=65535, help="samples (default 65535)")
    parser.add_argument(
        "--subset", type=int, default=None, help="items scored by mir_eval too (default: all)"
    )
    parser.add_argument("--threads", type=int, default=1, help="threads for both (default 1)")
    parser.add_argument("--chunk", type=int, default=50, help="items per bss_eval call")
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before numpy/torch load their BLAS

    import warnings

    import mir_eval
    import numpy as np
    import torch

    from pixelplayer.metrics import bss_eval

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=FutureWarning)  # mir_eval's deprecation notice
    rng = np.random.default_rng(0)

    subset = args.items if args.subset is None else min(args.subset, args.items)
    ours_s, mir_s, diff = 0.0, 0.0, 0.0
    for start in range(0, args.items, args.chunk):
        ref, est = make_batch(rng, min(args.chunk, args.items - start), args.length)
        tic = time.perf_counter()
        m = bss_eval(ref, est)
        ours_s += time.perf_counter() - tic
        assert all(s == "ok" for s in m["status"])
        both = max(0, min(len(ref), subset - start))  # items of this chunk mir_eval scores too
        tic = time.perf_counter()
        mir = [
            mir_eval.separation.bss_eval_sources(r, e, compute_permutation=False)[:3]
            for r, e in zip(ref[:both].astype(float), est[:both].astype(float), strict=True)
        ]
        mir_s += time.perf_counter() - tic
        if both:
            mir = np.stack([np.stack(x) for x in mir], axis=1)  # (3, both, 2)
            ours = np.stack([m[k][:both] for k in ("sdr", "sir", "sar")])
            diff = max(diff, float(np.abs(ours - mir).max()))

    ours_rate = args.items / ours_s
    mir_rate = subset / mir_s
    how = "all items" if subset == args.items else f"{subset} items, rate extrapolated per item"
    print(
        f"bss_eval {args.items} x 2 sources x {args.length} samples @ {SR} Hz, "
        f"{args.threads} thread(s): pixelplayer.metrics {ours_rate:.1f} items/s "
        f"({ours_s:.1f} s); mir_eval {mir_rate:.2f} items/s ({how}, {mir_s:.1f} s); "
        f"{ours_rate / mir_rate:.0f}x faster; max |SDR/SIR/SAR diff| over {subset} items: "
        f"{diff:.1e} dB"
    )


if __name__ == "__main__":
    main()
