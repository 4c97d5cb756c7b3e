"""Which pixels sound: audio-visual correspondence of each cell with the sound heard.

Mask energy (how loud the mixture is under a cell's mask) cannot tell a sounding instrument from
a silent one: the synthesizer is never taught what a silent object should do. The grounding head
is taught that decision directly, as sound-source localization methods do (Discriminative
Sounding Objects Localization, Hu et al. 2020; EZ-VSL and SLAVC, Mo and Morgado 2022): every
cell's embedding is compared with the mixture's sound embedding (cosine), and a multiple-instance
rule over the cells of a clip's frame is contrasted against the other mixtures of the batch and
against silence. The logit is absolute (a learned scale and bias, not a per-image ranking), so a
frame where nothing sounds stays dark: SLAVC's point, since objects can be silent.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

TOP_SHARE = 0.02  # a bag's score: the mean logit of its top 2 % of cells (about one object part)


class SoundEncoder(nn.Module):
    """Log magnitude (B, 1, F, T) -> one unit embedding (B, D): strided convs, mean over bins."""

    def __init__(self, dim: int = 32, width: int = 16, levels: int = 4):
        super().__init__()
        layers, c_in = [nn.BatchNorm2d(1)], 1
        for i in range(levels):
            c_out = width * 2 ** min(i, 2)
            layers += [
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Linear(c_in, dim)

    def forward(self, log_mag: torch.Tensor) -> torch.Tensor:
        x = self.convs(log_mag).mean(dim=(2, 3))  # (B, C)
        return F.normalize(self.proj(x), dim=1)


class GroundingHead(nn.Module):
    """Cell embeddings from the frame net's K features, a sound embedding, an absolute logit.

    k: the frame net's feature channels. dim: the shared embedding size.
    """

    def __init__(self, k: int = 32, dim: int = 32, width: int = 16):
        super().__init__()
        self.visual = nn.Conv2d(k, dim, 1)
        self.sound = SoundEncoder(dim, width)
        # cosine in [-1, 1] -> logit; starts at 10 * cos - 5: a cell sounds once cos > 0.5
        self.scale = nn.Parameter(torch.tensor(10.0))
        self.bias = nn.Parameter(torch.tensor(-5.0))

    def cells(self, pixels: torch.Tensor) -> torch.Tensor:
        """Raw frame-net features (B, K, T, h, w) -> unit cell embeddings (B, D, T, h, w)."""
        b, k, t, h, w = pixels.shape
        x = self.visual(pixels.transpose(1, 2).reshape(b * t, k, h, w))  # (B*T, D, h, w)
        return F.normalize(x, dim=1).reshape(b, t, -1, h, w).transpose(1, 2)

    def logits(self, cells: torch.Tensor, sounds: torch.Tensor) -> torch.Tensor:
        """Cells (B, D, T, h, w) against sounds (S, D) -> logits (B, S, T, h, w): does each
        cell make sound s? sigmoid > 0.5 is the model's own decision."""
        cos = torch.einsum("bdthw,sd->bsthw", cells.float(), sounds.float())
        return self.scale * cos + self.bias

    def own_logits(self, cells: torch.Tensor, sounds: torch.Tensor) -> torch.Tensor:
        """Each item's cells (B, D, T, h, w) against its own sound (B, D) -> (B, T, h, w)."""
        cos = torch.einsum("bdthw,bd->bthw", cells.float(), sounds.float())
        return self.scale * cos + self.bias


def bag_scores(logits: torch.Tensor) -> torch.Tensor:
    """(..., T, h, w) cell logits -> (..., T): each frame's mean of its top TOP_SHARE cells."""
    flat = logits.flatten(-2)
    top = max(1, round(TOP_SHARE * flat.shape[-1]))
    return flat.topk(top, dim=-1).values.mean(dim=-1)


def correspondence_targets(classes: torch.Tensor, heard: torch.Tensor) -> torch.Tensor:
    """(B, N) classes and heard flags -> (B*N, B + 1) float: does clip (i, m) sound in mixture
    j (its class is one that mixture j hears), and, last column, in silence (never)."""
    b, n = classes.shape
    heard_classes = torch.where(heard, classes, -1)  # (B, N)
    target = (classes.reshape(b * n, 1, 1) == heard_classes.reshape(1, b, n)).any(-1)
    return torch.cat([target, target.new_zeros(b * n, 1)], dim=1).float()


def grounding_loss(
    head: GroundingHead,
    pixels: torch.Tensor,
    log_mag: torch.Tensor,
    classes: torch.Tensor,
    heard: torch.Tensor,
) -> torch.Tensor:
    """The multiple-instance correspondence loss of one batch of mixtures.

    pixels: raw frame-net features of every clip (B, N, K, T, h, w); log_mag: the mixtures' log
    magnitudes (B, 1, F, T); classes: (B, N) class of each clip; heard: (B, N) bool, the clip's
    source is in its mixture (False for clips shown but silent).

    Every clip's frames meet every mixture's sound and silence's: a frame's bag (its cells)
    sounds with a mixture when the clip's class is heard in it. Positives and negatives count
    half each (negatives outnumber positives B to 1). Teaching the top cells of a bag up and
    all of a negative bag's cells down (through its top cells) leaves background and silent
    objects dark: they are in every negative bag.
    """
    silence = torch.full_like(log_mag[:1], float(log_mag.min()))  # the quietest input there is
    sounds = head.sound(torch.cat([log_mag, silence]))  # (B + 1, D)
    cells = head.cells(pixels.flatten(0, 1))  # (B*N, D, T, h, w)
    scores = bag_scores(head.logits(cells, sounds))  # (B*N, B + 1, T)
    target = correspondence_targets(classes, heard).unsqueeze(-1).expand_as(scores)
    per = F.binary_cross_entropy_with_logits(scores, target, reduction="none")
    pos, neg = target.bool(), ~target.bool()
    pos_loss = per[pos].mean() if pos.any() else per.new_zeros(())
    return 0.5 * pos_loss + 0.5 * per[neg].mean()
