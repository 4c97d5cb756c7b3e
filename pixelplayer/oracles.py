"""Oracle separators and the ideal masks they use.

An oracle sees the true sources and sets the upper bound (ideal binary / ratio masks applied to
the mixture spectrogram) or the lower bound (the mixture itself) for what a mask-based separator
can reach. Every oracle has the separator signature `oracle(mix (B, L), refs (B, N, L)) ->
estimates (B, N, L)`. The mask definitions are shared with training, which uses them for its
ground-truth masks, so the oracles score exactly the targets the network learns.
"""

from __future__ import annotations

import numpy as np
import torch

from pixelplayer.audio import istft, stft

N_FFT = 1022
HOP = 256


def binary_masks(mags: torch.Tensor) -> torch.Tensor:
    """Ideal binary masks: each bin goes to the loudest source. (B, N, F, T) -> (B, N, F, T).

    One-hot along N for any N (the paper's rule); on ties (e.g. bins silent in every source)
    the first source wins, so the masks always partition the mixture.
    """
    loudest = mags.argmax(dim=1, keepdim=True)
    return torch.zeros_like(mags).scatter_(1, loudest, 1.0)


def ratio_masks(mags: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Ideal ratio masks |S_n| / sum_m |S_m|. (B, N, F, T) -> (B, N, F, T), summing to 1 per bin.

    Bins silent in every source (sum < eps) are split evenly rather than divided by zero.
    """
    total = mags.sum(dim=1, keepdim=True)
    even = torch.full_like(mags, 1.0 / mags.shape[1])
    return torch.where(total > eps, mags / total.clamp_min(eps), even)


def ideal_binary_mask(
    mix: torch.Tensor | np.ndarray,
    refs: torch.Tensor | np.ndarray,
    n_fft: int = N_FFT,
    hop: int = HOP,
) -> torch.Tensor:
    """Oracle: mixture spectrogram times the ideal binary masks. -> (B, N, L) estimates."""
    return _apply_masks(mix, refs, binary_masks, n_fft, hop)


def ideal_ratio_mask(
    mix: torch.Tensor | np.ndarray,
    refs: torch.Tensor | np.ndarray,
    n_fft: int = N_FFT,
    hop: int = HOP,
) -> torch.Tensor:
    """Oracle: mixture spectrogram times the ideal ratio masks. -> (B, N, L) estimates."""
    return _apply_masks(mix, refs, ratio_masks, n_fft, hop)


def mixture(mix: torch.Tensor | np.ndarray, refs: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Lower bound: the mixture (B, L) as the estimate of each of the N sources -> (B, N, L)."""
    mix, refs = _check(mix, refs)
    return mix.unsqueeze(1).expand_as(refs).clone()


def _check(mix, refs) -> tuple[torch.Tensor, torch.Tensor]:
    mix, refs = torch.as_tensor(mix), torch.as_tensor(refs)
    if refs.ndim != 3 or mix.shape != (refs.shape[0], refs.shape[2]):
        raise ValueError(
            f"need mix (B, L) and refs (B, N, L); got {tuple(mix.shape)}, {tuple(refs.shape)}"
        )
    return mix, refs.to(mix.dtype)


def _apply_masks(mix, refs, mask_fn, n_fft: int, hop: int) -> torch.Tensor:
    mix, refs = _check(mix, refs)
    mix_spec = stft(mix, n_fft, hop)  # (B, F, T) complex
    masks = mask_fn(stft(refs, n_fft, hop).abs())  # (B, N, F, T), real
    # real mask on the complex mixture: the estimate keeps the mixture's phase
    return istft(mix_spec.unsqueeze(1) * masks, mix.shape[-1], n_fft, hop)
