"""Batched torch KL-NMF (pixelplayer.nmf) against scikit-learn's, one spectrogram at a time.

    python benchmarks/bench_nmf.py [--batch 64] [--iters 100] [--rank 25] [--device cuda]
                                   [--blas-threads 1] [--precision float32 bfloat16]

Data: magnitude spectrograms (512 x 256: n_fft 1022, hop 256, as the models use) of synthetic
music, a few harmonic notes with decaying envelopes over noise. scikit-learn runs
`NMF(beta_loss="kullback-leibler", solver="mu", init="random", tol=0)` on each item in a loop,
torch factorises the whole batch in one call, once for each --precision (default: float32 and
bfloat16 products, see pixelplayer.nmf); all for the same number of iterations, and all
final divergences are the generalised KL of pixelplayer.nmf.kl_divergence (for scikit-learn,
reconstruction_err_**2 / 2, the same quantity). A small warm-up call comes first (the first
call pays for the thread pool and the allocator, as scikit-learn's first item does inside its
loop).
--blas-threads caps scikit-learn's BLAS threads (threadpoolctl): on cores shared with other work
its spinning threads can make it many times slower, which would flatter the speed-up.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from pixelplayer.nmf import PRECISIONS, kl_divergence, kl_nmf


def spectrograms(batch: int, seed: int = 0, sr: int = 11025, frames: int = 256) -> torch.Tensor:
    """(batch, 512, frames) float32 magnitudes of random notes over noise."""
    g = torch.Generator().manual_seed(seed)
    length = (frames - 1) * 256
    t = torch.arange(length) / sr
    wav = 0.01 * torch.randn(batch, length, generator=g)
    for _ in range(6):  # notes: random pitch, onset and decay per item
        f0 = 110 * 2 ** (torch.rand(batch, 1, generator=g) * 4)
        onset = torch.rand(batch, 1, generator=g) * t[-1]
        env = torch.exp(-(t - onset).clamp_min(0) * 3) * (t >= onset)
        for h in range(1, 6):
            wav += env * torch.sin(2 * np.pi * f0 * h * t) * 0.3 / h
    # the models' STFT (pixelplayer.audio.stft), inlined so this runs where soundfile is absent
    window = torch.hann_window(1022)
    return torch.stft(wav, 1022, 256, window=window, return_complex=True).abs()


def run_sklearn(V: np.ndarray, rank: int, iters: int, threads: int | None) -> tuple[float, float]:
    from sklearn.decomposition import NMF
    from threadpoolctl import threadpool_limits

    start, divs = time.perf_counter(), []
    with warnings.catch_warnings(), threadpool_limits(threads):
        warnings.simplefilter("ignore")  # ConvergenceWarning: tol=0 runs every iteration
        for v in V:
            nmf = NMF(rank, beta_loss="kullback-leibler", solver="mu", init="random")
            nmf.set_params(max_iter=iters, tol=0, random_state=0)
            nmf.fit_transform(v)
            divs.append(nmf.reconstruction_err_**2 / 2)
    return time.perf_counter() - start, float(np.mean(divs))


def run_torch(
    V: torch.Tensor, rank: int, iters: int, device: str, precision: str
) -> tuple[float, float]:
    V = V.to(device)
    # warm-up: CUDA context and kernels, CPU thread pool and allocator
    kl_nmf(V[:2], rank, 2, precision=precision)
    if V.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    W, H = kl_nmf(V, rank, iters, precision=precision)
    if V.device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return elapsed, kl_divergence(V, W, H).mean().item()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--rank", type=int, default=25)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--blas-threads", type=int, help="scikit-learn's BLAS threads (default: all)")
    p.add_argument("--torch-threads", type=int, help="torch's CPU threads (default: all)")
    p.add_argument("--precision", nargs="+", default=list(PRECISIONS), choices=list(PRECISIONS))
    args = p.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    V = spectrograms(args.batch)
    print(
        f"{args.batch} spectrograms {tuple(V.shape[1:])}, rank {args.rank}, {args.iters} "
        f"iterations; torch on {args.device} ({torch.get_num_threads()} CPU threads)"
    )
    runs = {p: run_torch(V, args.rank, args.iters, args.device, p) for p in args.precision}
    t_sk, d_sk = run_sklearn(V.numpy(), args.rank, args.iters, args.blas_threads)
    blas = f"{args.blas_threads} BLAS threads" if args.blas_threads else "default BLAS threads"
    print(f"scikit-learn (loop over items, {blas}): {t_sk:.2f} s, mean final KL {d_sk:.6g}")
    for precision, (t, d) in runs.items():
        print(
            f"pixelplayer.nmf ({precision} products, one batch): {t:.2f} s, "
            f"speed-up {t_sk / t:.1f}x (target >= 5x: {'met' if t_sk / t >= 5 else 'NOT met'}), "
            f"mean final KL {d:.6g} ({100 * (d / d_sk - 1):+.2f} %)"
        )


if __name__ == "__main__":
    main()
