"""Mixed precision and mask combination: what the fast path changes, and what it must not."""

from __future__ import annotations

import pytest
import torch

from pixelplayer.mixsep import SpecConfig, logits_to_masks, loss
from pixelplayer.models import PixelPlayer
from pixelplayer.precision import amp_dtype, autocast, fast_layout

SMALL = dict(frame={"width": 8}, sound={"ngf": 8, "levels": 4}, k=8)
BF16 = amp_dtype("cpu") == torch.bfloat16


def test_amp_dtype_per_device():
    assert amp_dtype("cpu", enabled=False) is None
    assert amp_dtype("cuda") == torch.float16
    assert amp_dtype("cuda", enabled=False) is None
    assert amp_dtype("cpu") in (None, torch.bfloat16)


def test_fast_layout_and_autocast_keep_the_outputs():
    torch.manual_seed(0)
    model = PixelPlayer(**SMALL).eval()
    mix, frames = torch.rand(2, 1, 64, 32), torch.randn(2, 2, 3, 2, 64, 64)
    with torch.no_grad():
        ref = model(mix, frames)
        fast_layout(model)
        same = model(mix, frames)
        with autocast("cpu", amp_dtype("cpu")):
            low = model(mix, frames).float()
    torch.testing.assert_close(same, ref, rtol=1e-4, atol=1e-4)
    # bfloat16 keeps about 3 significant digits: the masks move by far less than a threshold step
    assert (torch.sigmoid(low) - torch.sigmoid(ref)).abs().max() < 0.05


@pytest.mark.skipif(not BF16, reason="this CPU has no native bfloat16")
def test_bfloat16_gradients_point_where_float32_ones_do():
    torch.manual_seed(1)
    model = fast_layout(PixelPlayer(**SMALL).train())
    mix, frames = torch.rand(4, 1, 64, 32), torch.randn(4, 2, 3, 2, 64, 64)
    target = (torch.rand(4, 2, 64, 32) > 0.5).float()

    def gradient(dtype):
        model.zero_grad()
        with autocast("cpu", dtype):
            logits = model(mix, frames)
        torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), target).backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    full, low = gradient(None), gradient(torch.bfloat16)
    assert torch.isfinite(low).all()
    assert torch.nn.functional.cosine_similarity(full, low, dim=0) > 0.95


def test_logits_to_masks_independent_softmax_and_threshold():
    logits = torch.tensor([[[[2.0, -1.0]], [[0.5, -3.0]]]])  # (B=1, N=2, R=1, T=2)
    ind = logits_to_masks(logits, SpecConfig(combine="independent"))
    torch.testing.assert_close(ind, torch.sigmoid(logits))
    soft = logits_to_masks(logits, SpecConfig(combine="softmax"))
    torch.testing.assert_close(soft.sum(1), torch.ones(1, 1, 2))  # every bin shared out
    assert soft[0, 0, 0, 0] > soft[0, 1, 0, 0]
    # both sources below 0.5 on their own, yet the softmax still gives the bin to one of them
    hard = logits_to_masks(logits, SpecConfig(combine="softmax"), threshold=0.5)
    assert hard[0, :, 0, 1].tolist() == [1.0, 0.0]
    assert logits_to_masks(logits, SpecConfig(), threshold=0.5)[0, :, 0, 1].tolist() == [0.0, 0.0]
    # ratio masks are never thresholded
    ratio = logits_to_masks(logits, SpecConfig(mask="ratio"), threshold=0.5)
    torch.testing.assert_close(ratio, torch.sigmoid(logits))
    with pytest.raises(ValueError, match="combine"):
        SpecConfig(combine="max")


def test_bce_ce_loss_adds_the_cross_entropy_of_the_softmax_over_sources():
    torch.manual_seed(2)
    logits = torch.randn(2, 3, 4, 5)  # (B, N, R, T)
    masks = torch.nn.functional.one_hot(torch.randint(0, 3, (2, 4, 5)), 3).permute(0, 3, 1, 2)
    masks = masks.float()
    weight = torch.rand(2, 1, 4, 5).expand_as(masks)
    both, bce_only = SpecConfig(loss="bce+ce", combine="softmax"), SpecConfig(loss="bce")
    per_bin = torch.nn.functional.cross_entropy(logits, masks.argmax(1), reduction="none")
    ce = (per_bin * weight[:, 0]).sum() / weight[:, 0].sum() / 3  # weight counted N times
    bce = loss(logits, masks, weight, bce_only)
    torch.testing.assert_close(loss(logits, masks, weight, both), ce + bce)
    # a constant added to every source's logit changes no share: only the bce term moves
    shifted = loss(logits + 5.0, masks, weight, both) - loss(logits + 5.0, masks, weight, bce_only)
    torch.testing.assert_close(shifted, ce)
    # the right source made surer lowers it
    assert loss(logits + 3.0 * masks, masks, weight, both) < ce + bce
    with pytest.raises(ValueError, match="loss must be one of"):
        SpecConfig(loss="ce")
