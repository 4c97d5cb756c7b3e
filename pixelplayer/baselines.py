"""Unsupervised baselines: separators that use neither video nor training.

NmfKmeansSeparator is the NMF + MFCC + k-means baseline of Spiertz & Gnann (2009) that the
seed papers compare with: factorise the mixture's magnitude spectrogram, cluster the spectral
bases by their MFCCs into N groups, and give each group a soft (Wiener-like) mask. Nothing ties
a group to a source, so the evaluator scores it with the best assignment of groups to references
(`permutation_invariant`), as the papers did for unsupervised baselines.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.fft import dct

from pixelplayer.audio import istft
from pixelplayer.mixsep import SpecConfig, mixture_spec
from pixelplayer.nmf import kl_nmf
from pixelplayer.oracles import ratio_masks


def mel_filterbank(bins: int, sr: int, n_mels: int = 40) -> np.ndarray:
    """(n_mels, bins) triangular filters on the HTK mel scale, 0 Hz to Nyquist, unit peak."""

    def mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.linspace(0.0, sr / 2, bins)
    edges = hz(np.linspace(0.0, mel(sr / 2), n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rise = (freqs - lo) / (mid - lo)
    fall = (hi - freqs) / (hi - mid)
    return np.maximum(0.0, np.minimum(rise, fall))


def basis_mfcc(W: np.ndarray, sr: int, n_mfcc: int = 13, n_mels: int = 40) -> np.ndarray:
    """MFCCs of spectral bases: W (..., F, R) magnitudes -> (..., R, n_mfcc).

    Each column is one spectral shape: mel filterbank -> log -> DCT-II (orthonormal).
    """
    fb = mel_filterbank(W.shape[-2], sr, n_mels)  # (M, F)
    mel = np.einsum("mf,...fr->...rm", fb, W)
    return dct(np.log(mel + 1e-10), type=2, norm="ortho", axis=-1)[..., :n_mfcc]


class NmfKmeansSeparator:
    """NMF on each mixture, bases clustered by MFCC with k-means, one soft mask per cluster.

    `separator(batch) -> (B, N, L)`; N is the number of sources asked for, read from the batch
    (`audios` or `frames`), never their content. All mixtures are factorised in one batched
    kl_nmf call; k-means runs per mixture (25 points, cheap).
    """

    permutation_invariant = True  # groups come in no particular order

    def __init__(
        self,
        spec: SpecConfig,
        rank: int = 25,
        iters: int = 200,
        n_mfcc: int = 13,
        seed: int = 0,
        sr: int = 11025,
        device=None,
    ):
        self.spec, self.rank, self.iters, self.n_mfcc = spec, rank, iters, n_mfcc
        self.seed, self.sr = seed, sr
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def __call__(self, batch: dict) -> torch.Tensor:
        n = (batch["audios"] if "audios" in batch else batch["frames"]).shape[1]
        mix = batch["mix"].to(self.device)
        spec = mixture_spec(mix, self.spec)  # (B, F, T) complex
        W, H = kl_nmf(spec.abs(), self.rank, self.iters, seed=self.seed)
        groups = self.cluster(W.cpu().double().numpy(), n)  # (B, R) in [0, n)
        masks = self.masks(W, H, torch.as_tensor(groups, device=W.device), n)
        return istft(masks * spec.unsqueeze(1), mix.shape[-1], self.spec.n_fft, self.spec.hop).cpu()

    def cluster(self, W: np.ndarray, n: int) -> np.ndarray:
        """W (B, F, R) -> (B, R) group of each basis: k-means on the bases' MFCCs."""
        from sklearn.cluster import KMeans
        from threadpoolctl import threadpool_limits

        feats = basis_mfcc(W, self.sr, self.n_mfcc)  # (B, R, n_mfcc)
        km = KMeans(n_clusters=n, n_init=10, random_state=self.seed)
        # R points: threads only add waits (30x slower seen on 2 busy cores)
        with threadpool_limits(1):
            return np.stack([km.fit_predict(f) for f in feats]).astype(np.int64)

    @staticmethod
    def masks(W: torch.Tensor, H: torch.Tensor, groups: torch.Tensor, n: int) -> torch.Tensor:
        """W (B, F, R), H (B, R, T), groups (B, R) -> soft masks W_g H_g / W H, (B, n, F, T)."""
        onehot = torch.nn.functional.one_hot(groups, n).transpose(1, 2).to(W.dtype)  # (B, n, R)
        parts = (W.unsqueeze(1) * onehot.unsqueeze(2)) @ H.unsqueeze(1)  # (B, n, F, T)
        return ratio_masks(parts)  # shares sum to 1 in every bin: the masks partition the mix
