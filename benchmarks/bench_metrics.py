"""Time pixelplayer.metrics.bss_eval against mir_eval on realistic two-source separations.

    python benchmarks/bench_metrics.py [--items 1000] [--subset 20] [--threads 1]

Scores `items` mixtures of two harmonic sources (vibrato, note envelopes, noise), 65535 samples
at 11025 Hz, whose estimates are the reference plus filtered interference plus noise. mir_eval
scores only the first `subset` items (it takes ~0.1-0.3 s each) and its rate is extrapolated
per item. Prints one line: items/s of each, the speed ratio, and the largest SDR/SIR/SAR
difference in dB on the subset. Target: >= 20x faster, within 0.05 dB.
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
    parser.add_argument("--subset", type=int, default=20, help="items scored by mir_eval too")
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

    ours_s, subset, ours_subset = 0.0, None, []
    for start in range(0, args.items, args.chunk):
        ref, est = make_batch(rng, min(args.chunk, args.items - start), args.length)
        if subset is None:
            subset = (ref[: args.subset], est[: args.subset])
        tic = time.perf_counter()
        m = bss_eval(ref, est)
        ours_s += time.perf_counter() - tic
        if start == 0:
            ours_subset = np.stack([m[k][: args.subset] for k in ("sdr", "sir", "sar")])
        assert all(s == "ok" for s in m["status"])

    ref, est = subset
    tic = time.perf_counter()
    mir = [
        mir_eval.separation.bss_eval_sources(r, e, compute_permutation=False)[:3]
        for r, e in zip(ref.astype(np.float64), est.astype(np.float64), strict=True)
    ]
    mir_s = time.perf_counter() - tic
    mir = np.stack([np.stack(x) for x in mir], axis=1)  # (3, subset, 2)

    ours_rate = args.items / ours_s
    mir_rate = len(ref) / mir_s
    diff = np.abs(ours_subset - mir).max()
    print(
        f"bss_eval {args.items} x 2 sources x {args.length} samples @ {SR} Hz, "
        f"{args.threads} thread(s): pixelplayer.metrics {ours_rate:.1f} items/s "
        f"({ours_s:.1f} s); mir_eval {mir_rate:.2f} items/s (on {len(ref)} items, extrapolated "
        f"per item); {ours_rate / mir_rate:.0f}x faster; max |diff| on those {len(ref)}: "
        f"{diff:.1e} dB"
    )


if __name__ == "__main__":
    main()
