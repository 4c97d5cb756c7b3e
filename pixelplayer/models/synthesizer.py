"""Audio synthesizer network: the reference `InnerProd` (synthesizer_net.py).

A mask logit is a learned weighted inner product between a visual feature vector and the
sound features at each time-frequency bin: sum_k alpha_k * v_k * s_k + beta. The sigmoid that
turns it into a binary/ratio mask is applied by the caller.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class InnerProd(nn.Module):
    """Per-channel scale alpha (`scale`, K params, ones) and a bias beta (`bias`, 1 param, zero).

    The parameter names are the reference's, so its released synthesizer weights load.
    """

    def __init__(self, k: int = 32):
        super().__init__()
        self.k = k
        self.scale = nn.Parameter(torch.ones(k))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward_flat(self, vis: torch.Tensor, sound: torch.Tensor) -> torch.Tensor:
        """P visual vectors per item (B, P, K) with sound (B, K, F, T) -> logits (B, P, F, T).

        One batched matmul; the output is the only large tensor, so callers bound memory by
        passing pixels in chunks of P.
        """
        b, k, f, t = sound.shape
        if vis.dim() != 3 or vis.shape[0] != b or vis.shape[2] != k:
            raise ValueError(f"vis must be (B={b}, P, K={k}), got {tuple(vis.shape)}")
        z = torch.bmm(vis * self.scale, sound.reshape(b, k, f * t))  # (B, P, F*T)
        return z.reshape(b, -1, f, t) + self.bias

    def forward(self, vis: torch.Tensor, sound: torch.Tensor) -> torch.Tensor:
        """Pooled visual vector (B, K) with sound (B, K, F, T) -> logits (B, 1, F, T)."""
        return self.forward_flat(vis.unsqueeze(1), sound)

    def forward_pixels(self, vis: torch.Tensor, sound: torch.Tensor) -> torch.Tensor:
        """Per-pixel visual features (B, K, h, w) with sound (B, K, F, T) -> (B, h, w, F, T)."""
        b, k, h, w = vis.shape
        z = self.forward_flat(vis.reshape(b, k, h * w).transpose(1, 2), sound)  # (B, h*w, F, T)
        return z.reshape(b, h, w, *z.shape[2:])
