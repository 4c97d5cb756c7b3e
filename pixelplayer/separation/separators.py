"""Mixture separators: anything that turns a batch of mixtures into one estimate per source.

These are what `pixelplayer eval` scores (`pixelplayer.separation.Separator`, which separates
whole videos, is another thing). Learned models and oracles share one interface, so the
evaluator scores them side by side: `separator(batch) -> (B, N, L)` where batch holds `mix`
(B, L), `frames` (B, N, 3, T, H, W) and, for oracles only, the true `audios` (B, N, L). A
separator whose estimates come in no particular order (unsupervised baselines) sets
`permutation_invariant = True`; the evaluator then pairs them with the references in the order
that scores best.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from pixelplayer import oracles
from pixelplayer.errors import PixelPlayerError
from pixelplayer.mixsep import SpecConfig, logits_to_masks, masks_to_waves, network_input
from pixelplayer.precision import amp_dtype, autocast, fast_layout
from pixelplayer.run import BEST, Run, as_run

MixtureSeparator = Callable[[dict], torch.Tensor]


class MaskModelSeparator:
    """A mask-predicting model (PixelPlayer and kin) applied to the mixture spectrogram."""

    def __init__(
        self,
        model: torch.nn.Module,
        spec: SpecConfig,
        threshold: float | None,
        device="cpu",
        amp: bool = True,
        options: dict | None = None,
    ):
        self.model, self.spec, self.threshold = model.eval(), spec, threshold
        self.device = torch.device(device)
        self.dtype = amp_dtype(self.device, amp)
        self.options = options or {}  # extra keyword arguments of the model's forward

    @torch.no_grad()
    def masks(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (masks (B, N, R, T) in [0, 1] on the net layout, mixture spectrogram (B, F, T))."""
        mix = batch["mix"].to(self.device)
        spec, mag = network_input(mix, self.spec)
        inputs = model_inputs(self.model, batch, self.device)
        with autocast(self.device, self.dtype):
            logits = self.model(mag, batch["frames"].to(self.device), **inputs, **self.options)
        return logits_to_masks(logits, self.spec, self.threshold), spec

    def __call__(self, batch: dict) -> torch.Tensor:
        masks, spec = self.masks(batch)
        return masks_to_waves(masks, spec, batch["mix"].shape[-1], self.spec).cpu()

    @classmethod
    def from_run(
        cls,
        run: str | Path | Run,
        checkpoint: str = BEST,
        device: torch.device | str | None = None,
        threshold: float | None | str = "config",
        combine: str = "config",
        options: dict | None = None,
    ) -> MaskModelSeparator:
        """The model of a run folder; threshold and combine default to the run's config."""
        run = as_run(run)
        cfg = run.config
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model, _ = run.load_model(checkpoint=checkpoint)
        thr = cfg.train.mask_threshold if threshold == "config" else threshold
        spec = cfg.spec if combine == "config" else replace(cfg.spec, combine=combine)
        return cls(fast_layout(model.to(device)), spec, thr, device, cfg.train.amp, options)


def model_inputs(model: torch.nn.Module, batch: dict, device) -> dict[str, torch.Tensor]:
    """The batch entries a model's forward takes besides the mixture and frames (its
    `inputs`: AMnet's motion frames), on `device`."""
    names = getattr(model, "inputs", ())
    missing = [n for n in names if n not in batch]
    if missing:
        raise PixelPlayerError(
            f"{type(model).__name__} needs {', '.join(missing)} in each batch; set "
            "sample.motion_size to the audio-motion embedding's frame size"
        )
    return {n: batch[n].to(device) for n in names}


def _oracle(fn) -> MixtureSeparator:
    def separate(batch: dict) -> torch.Tensor:
        if "audios" not in batch:
            raise PixelPlayerError("an oracle separator needs the true sources")
        return fn(batch["mix"], batch["audios"])

    return separate


ORACLES: dict[str, MixtureSeparator] = {
    "ibm": _oracle(oracles.ideal_binary_mask),
    "irm": _oracle(oracles.ideal_ratio_mask),
    "mixture": _oracle(oracles.mixture),
}
ORACLE_TITLES = {
    "ibm": "ideal binary mask (oracle)",
    "irm": "ideal ratio mask (oracle)",
    "mixture": "mixture (lower bound)",
}


# Baselines need no trained run; they are built on demand (the NMF one pulls in scikit-learn).
BASELINE_TITLES = {"nmf-kmeans": "NMF + MFCC + k-means (Spiertz & Gnann)"}


def baseline(name: str, cfg, device=None) -> MixtureSeparator:
    """The baseline `name` with the STFT (`cfg.spec`) and sample rate of a Config."""
    if name == "nmf-kmeans":
        from pixelplayer.baselines import NmfKmeansSeparator

        return NmfKmeansSeparator(cfg.spec, sr=cfg.sample.sr, device=device)
    raise PixelPlayerError(f"unknown baseline {name!r}; choose from {', '.join(BASELINE_TITLES)}")
