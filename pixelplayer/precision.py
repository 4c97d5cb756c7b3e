"""Mixed precision: float16 on CUDA, bfloat16 on CPUs that compute it natively, else float32.

On a CPU with AVX512-BF16 or AMX, bfloat16 convolutions in channels-last layout run the
training step about twice as fast as float32 (measured on the CPU preset: 1.05 s -> 0.50 s per
step on 2 cores). BatchNorm, the loss and the STFT stay in float32 under autocast.
"""

from __future__ import annotations

import contextlib

import torch


def amp_dtype(device: torch.device | str, enabled: bool = True) -> torch.dtype | None:
    """The autocast dtype for `device`, or None when mixed precision is off or would be slow."""
    device = torch.device(device)
    if not enabled:
        return None
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return None


def autocast(device: torch.device | str, dtype: torch.dtype | None):
    """A context that runs the forward pass in `dtype` (a no-op when dtype is None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def fast_layout(model: torch.nn.Module) -> torch.nn.Module:
    """Channels-last 2D convolution weights: oneDNN and cuDNN pick their fastest convolutions
    for it. (3D ones, as in the audio-motion embedding, keep theirs: a module-wide
    `.to(memory_format=channels_last)` refuses 5D weights.)"""
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            m.to(memory_format=torch.channels_last)
    return model
