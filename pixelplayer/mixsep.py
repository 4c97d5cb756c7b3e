"""Mix-and-separate on spectrograms: the network's input, its targets, its loss, and the way back
from a predicted mask to a waveform. Training, evaluation and `separate` all go through here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pixelplayer.audio import istft, stft, unwarp_logfreq, warp_logfreq
from pixelplayer.oracles import binary_masks, ratio_masks

EPS = 1e-10
LOSSES = ("bce", "bce+ce")
MASK_RULES = ("argmax", "half_mix")
LOSS_NORMS = ("weight_sum", "mean")


@dataclass
class SpecConfig:
    n_fft: int = 1022
    hop: int = 256
    log_freq: bool = True  # warp the frequency axis to `freq_rows` log-spaced rows
    freq_rows: int = 256
    mask: str = "binary"  # binary | ratio
    # which bins a binary mask gives a source: "argmax" = the bins where it is the loudest of
    # the N (one-hot, exactly one source per bin); "half_mix" = where its magnitude exceeds half
    # the mixture's, the reference code's rule (with 2 sources the dominant one; with more, a
    # bin may go to none or to several). Ratio masks ignore it.
    mask_rule: str = "argmax"
    # bce on each source's mask; bce+ce adds the cross-entropy of the softmax over
    # the N sources (the masks sharing out every bin, as `combine="softmax"` separates): +1.3
    # dB SDR for the CPU preset. The bce term keeps each source's sigmoid a mask on its own
    # (what `separate` hears a pixel by); cross-entropy alone leaves a shared offset free.
    loss: str = "bce"
    weighted: bool = True  # weight each bin by log1p(|mixture|), clamped (the paper's choice)
    # "weight_sum" = the weighted loss divided by the sum of the weights (a weighted mean);
    # "mean" = the mean over bins of weight x loss, the reference code's (its gradient is the
    # other's times the mean weight)
    loss_norm: str = "weight_sum"
    # how separation turns the N sources' logits into masks: "independent" = a sigmoid each
    # (the paper); "softmax" = the sources share out every bin (+0.8 dB SDR measured on a
    # CPU-preset model, whose independent masks overlap and leave gaps). Training is the same.
    combine: str = "independent"

    def __post_init__(self):
        if self.mask not in ("binary", "ratio"):
            raise ValueError(f"mask must be 'binary' or 'ratio', not {self.mask!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        if self.mask_rule not in MASK_RULES:
            raise ValueError(
                f"mask_rule must be one of {', '.join(MASK_RULES)}, not {self.mask_rule!r}"
            )
        if self.loss_norm not in LOSS_NORMS:
            raise ValueError(
                f"loss_norm must be one of {', '.join(LOSS_NORMS)}, not {self.loss_norm!r}"
            )
        if self.combine not in ("independent", "softmax"):
            raise ValueError(f"combine must be 'independent' or 'softmax', not {self.combine!r}")

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1  # 1022 -> 512 rows

    def to_net(self, mag: torch.Tensor) -> torch.Tensor:
        """(B, C, bins, T) linear magnitudes -> the network's frequency layout."""
        return warp_logfreq(mag, self.freq_rows) if self.log_freq else mag

    def from_net(self, mask: torch.Tensor) -> torch.Tensor:
        """(B, C, rows, T) mask in the network's layout -> (B, C, bins, T) linear frequency."""
        return unwarp_logfreq(mask, self.bins) if self.log_freq else mask


def mixture_spec(mix: torch.Tensor, cfg: SpecConfig) -> torch.Tensor:
    """(B, L) -> (B, bins, T) complex."""
    return stft(mix, cfg.n_fft, cfg.hop)


def network_input(mix: torch.Tensor, cfg: SpecConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) mixture -> (spectrogram (B, bins, T) complex, net-layout magnitude (B, 1, R, T))."""
    spec = mixture_spec(mix, cfg)
    return spec, cfg.to_net(spec.abs().unsqueeze(1))


def targets(
    audios: torch.Tensor, mix_mag: torch.Tensor, cfg: SpecConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N, L) sources and (B, 1, R, T) mixture magnitude -> (masks, weights), both (B, N, R, T).

    Masks are defined on the network's layout: binary = the source is the loudest of the N
    (`mask_rule="argmax"`) or holds more than half the mixture's magnitude ("half_mix"), ratio =
    its share of the summed magnitudes. The argmax and ratio definitions give the oracles.
    """
    b, n, length = audios.shape
    mags = stft(audios.reshape(b * n, length), cfg.n_fft, cfg.hop).abs()
    mags = cfg.to_net(mags.unsqueeze(1)).reshape(b, n, *mix_mag.shape[-2:])
    if cfg.mask == "ratio":
        masks = ratio_masks(mags)
    elif cfg.mask_rule == "half_mix":
        masks = (mags > 0.5 * mix_mag).to(mags.dtype)  # both warped the same way, as the reference
    else:
        masks = binary_masks(mags)
    if cfg.weighted:
        weight = torch.log1p(mix_mag).clamp(1e-3, 10.0).expand_as(masks)
    else:
        weight = torch.ones_like(masks)
    return masks, weight


def loss(
    logits: torch.Tensor, masks: torch.Tensor, weight: torch.Tensor, cfg: SpecConfig
) -> torch.Tensor:
    """The loss over every bin of every source; logits and masks are (B, N, R, T).

    `cfg.loss_norm`: "weight_sum" divides the weighted sum by the sum of the weights (a weighted
    mean); "mean" divides it by the number of bins (the mean of weight x loss, the reference's).
    """
    return (_mask_loss(logits, masks, cfg) * weight).sum() / loss_denominator(weight, cfg)


def loss_denominator(weight: torch.Tensor, cfg: SpecConfig) -> torch.Tensor:
    """What `loss` divides the weighted sum by: the sum of the weights, or the number of bins."""
    if cfg.loss_norm == "mean":
        return torch.tensor(float(weight.numel()), device=weight.device)
    return weight.sum()


def _mask_loss(logits: torch.Tensor, masks: torch.Tensor, cfg: SpecConfig) -> torch.Tensor:
    """(B, N, R, T) logits against masks -> the loss of every bin, (B, N, R, T)."""
    per_bin = F.binary_cross_entropy_with_logits(logits, masks, reduction="none")
    if cfg.loss == "bce+ce":
        per_bin = per_bin - masks * torch.log_softmax(logits, dim=1)
    return per_bin


def logits_to_masks(
    logits: torch.Tensor, cfg: SpecConfig, threshold: float | None = None
) -> torch.Tensor:
    """(B, N, R, T) logits -> masks in [0, 1]; binary masks above `threshold` become 1, else 0."""
    logits = logits.float()
    if cfg.combine == "softmax":
        masks = torch.softmax(logits, dim=1)
    else:
        masks = torch.sigmoid(logits)
    if cfg.mask == "binary" and threshold is not None:
        masks = (masks > threshold).float()
    return masks


def masks_to_waves(
    masks: torch.Tensor, spec: torch.Tensor, length: int, cfg: SpecConfig
) -> torch.Tensor:
    """(B, N, R, T) masks in [0, 1] on the net layout + (B, bins, T) mixture -> (B, N, length)."""
    b, n = masks.shape[:2]
    lin = cfg.from_net(masks.reshape(b * n, 1, *masks.shape[-2:])).reshape(b, n, cfg.bins, -1)
    return istft(lin * spec.unsqueeze(1), length, cfg.n_fft, cfg.hop)  # mixture phase
