"""Batched KL-divergence NMF with multiplicative updates (Lee & Seung), in torch.

V (B, F, T) ~ W (B, F, R) @ H (B, R, T), every item of the batch factorised at once with `bmm`
on V's device. It is the algorithm of scikit-learn's
`NMF(beta_loss="kullback-leibler", solver="mu", init="random")`: the same divergence, the same
alternating updates (W first, then H, as scikit-learn does) and the same initialisation scheme,
so a run of either reaches the same divergence after the same number of iterations (up to the
random draw: see tests/test_nmf.py). benchmarks/bench_nmf.py measures the speed-up (figures in
docs/results.md); the four batched products of an iteration take nearly all of the time.

precision="bfloat16" runs the products in bfloat16 (V, and copies of W and H, rounded once
per update; W and H themselves stay float32): CPUs with AVX512-BF16 or AMX and GPUs multiply
bfloat16 2-4x faster, and the final divergence moves by a few hundredths of a percent (it is
a sum over many rounded terms whose errors cancel). float32 stays the default.

One difference that changes no product W @ H: the columns of W are rescaled to unit sum after
each W update, with the inverse scaling on the rows of H. The multiplicative updates are
invariant to that rescaling, and it makes bases of different items and runs comparable (the
NMF + k-means baseline clusters them) and keeps the H update's denominator sum_f W[f, r] = 1.
"""

from __future__ import annotations

import torch

EPS = 1e-10
CPU_CHUNK_BYTES = 4 << 20  # V of one chunk of items on CPU (see _chunk)
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16}  # dtype of the products (None: V's)


def kl_divergence(
    V: torch.Tensor, W: torch.Tensor, H: torch.Tensor, eps: float = EPS
) -> torch.Tensor:
    """Generalised KL divergence D(V || WH) = sum V log(V / WH) - V + WH per item -> (B,) float64.

    V (B, F, T) or (F, T); W, H batched or not like V. Terms with V = 0 count as WH only and
    WH is floored at `eps`. scikit-learn's `_beta_divergence(X, W, H, beta=1)` is the same sum
    (it floors WH at, and skips X below, float32's eps: no difference on spectrograms), and
    `NMF(beta_loss="kullback-leibler").reconstruction_err_` is its square_root=True form,
    sqrt(2 * D): so D = reconstruction_err_**2 / 2.
    """
    V, W, H = (x.double() for x in (V, W, H))
    if V.ndim == 2:
        V = V.unsqueeze(0)
    WH = torch.matmul(W, H).clamp_min_(eps).expand_as(V)
    log_term = torch.where(V > 0, V * torch.log(V / WH), torch.zeros_like(V))
    return (log_term - V + WH).sum(dim=(-2, -1))


def kl_nmf(
    V: torch.Tensor,
    rank: int,
    iters: int = 200,
    W: torch.Tensor | None = None,
    H: torch.Tensor | None = None,
    seed: int = 0,
    eps: float = EPS,
    update_w: bool = True,
    precision: str = "float32",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Factorise nonnegative V (B, F, T) into W (B, F, R) @ H (B, R, T) minimising KL divergence.

    A 2-D V (F, T) gives unbatched W (F, R), H (R, T): the output mirrors the input. Runs on V's
    device, in float64 when V is float64, else float32.

    Initialisation (where W or H is not given): |N(0, 1)| * sqrt(mean(V_b) / R) per item b, as
    scikit-learn's init="random", drawn from a CPU torch generator seeded with `seed` (so CPU
    and CUDA start from the same point); H is drawn first, then W. Given W or H are used as the
    starting point (copied, never modified in place).

    Supervised NMF: pass fixed bases W ((F, R) shared by every item, or (B, F, R)) with
    update_w=False; only H is estimated and W is returned as given (broadcast to the batch).
    With update_w=True the columns of W are kept at unit sum (see the module docstring).
    precision: "float32" (products in V's float dtype) or "bfloat16" (see the module docstring).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    batched = V.ndim == 3
    dtype = torch.float64 if V.dtype == torch.float64 else torch.float32
    # contiguous: the work buffer is laid out like V, and a strided product output (an STFT's
    # frames-major magnitudes) is 10-1000x slower in bfloat16
    V = (V if batched else V.unsqueeze(0)).to(dtype).contiguous()
    if (V < 0).any():
        raise ValueError("kl_nmf needs a nonnegative V")
    W, H = _initial(V, rank, W, H, seed)
    if update_w:
        _normalise(W, H, eps)
    work = PRECISIONS[precision] or dtype
    step = _chunk(V, work)
    for i in range(0, len(V), step):  # views: the updates write into W and H
        chunk = (V[i : i + step], W[i : i + step], H[i : i + step])
        _iterate(*chunk, iters, eps, update_w, work)
    return (W, H) if batched else (W[0], H[0])


def _chunk(V: torch.Tensor, work: torch.dtype) -> int:
    """Items factorised together. On CPU a chunk's V and work buffer stay in cache (~8 MiB):
    2x faster than one 64-item batch of 512x256 spectrograms, measured on 2 EPYC cores."""
    if V.device.type != "cpu":
        return max(len(V), 1)
    return max(1, CPU_CHUNK_BYTES // (V[0].numel() * work.itemsize))


class _Products:
    """W and H as the products read them: the tensors themselves, or copies in a lower
    precision refreshed after each update of the float32 originals."""

    def __init__(self, W: torch.Tensor, H: torch.Tensor, work: torch.dtype):
        self.W, self.H = W, H
        self.w, self.h = W.to(work), H.to(work)  # no copy when work is W's dtype

    def refresh(self, w: bool = True) -> None:
        """Copy H again, and W unless `w` is False (an H update leaves W as it was)."""
        if self.h is not self.H:
            self.h.copy_(self.H)
            if w:
                self.w.copy_(self.W)


def _iterate(V, W, H, iters: int, eps: float, update_w: bool, work: torch.dtype) -> None:
    V = V.to(work)
    WH = torch.empty_like(V)  # work buffer: W @ H, then V / (W @ H)
    p = _Products(W, H, work)
    # H's denominator sum_f W[f, r]: 1 for the unit-sum bases of update_w, fixed W's own sums
    w_sums = None if update_w else W.sum(dim=1).clamp_min_(eps).unsqueeze(2)  # (B, R, 1)
    for _ in range(iters):
        if update_w:  # W first, then H: scikit-learn's order
            _update_w(V, p, WH, eps)
            p.refresh()
        _update_h(V, p, WH, w_sums, eps)
        p.refresh(w=False)


def _initial(V: torch.Tensor, rank: int, W, H, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    b, f, t = V.shape
    gen = torch.Generator().manual_seed(seed)
    scale = (V.mean(dim=(1, 2)).clamp_min(0) / rank).sqrt().cpu()[:, None, None]  # (B, 1, 1)
    H0 = torch.randn(b, rank, t, generator=gen, dtype=V.dtype).abs_() * scale
    W0 = torch.randn(b, f, rank, generator=gen, dtype=V.dtype).abs_() * scale
    W = W0 if W is None else _batch(W, b)
    H = H0 if H is None else _batch(H, b)
    W = W.to(V.device, V.dtype).contiguous().clone()
    H = H.to(V.device, V.dtype).contiguous().clone()
    if W.shape != (b, f, rank) or H.shape != (b, rank, t):
        raise ValueError(f"W {tuple(W.shape)} or H {tuple(H.shape)} do not fit V {(b, f, t)}")
    return W, H


def _batch(x: torch.Tensor, b: int) -> torch.Tensor:
    # (F, R) shared bases -> (B, F, R); an unbatched call's (R, T) -> (1, R, T)
    return x.expand(b, *x.shape) if x.ndim == 2 else x


def _ratio(V: torch.Tensor, p: _Products, WH: torch.Tensor, eps: float) -> None:
    """WH <- V / max(W @ H, eps), in place: the one full-size temporary of an update."""
    torch.bmm(p.w, p.h, out=WH).clamp_min_(eps)
    torch.div(V, WH, out=WH)


def _update_h(V, p: _Products, WH, w_sums: torch.Tensor | None, eps: float) -> None:
    # H <- H * (W^T (V / WH)) / (W^T 1)
    _ratio(V, p, WH, eps)
    num = torch.bmm(p.w.transpose(1, 2), WH).to(p.H.dtype)  # (B, R, T)
    p.H.mul_(num if w_sums is None else num.div_(w_sums))


def _update_w(V, p: _Products, WH, eps: float) -> None:
    # W <- W * ((V / WH) H^T) / (1 H^T), then unit-sum columns (H takes the scale)
    _ratio(V, p, WH, eps)
    num = torch.bmm(WH, p.h.transpose(1, 2)).to(p.W.dtype)  # (B, F, R)
    p.W.mul_(num.div_(p.H.sum(dim=2).clamp_min_(eps).unsqueeze(1)))
    _normalise(p.W, p.H, eps)


def _normalise(W: torch.Tensor, H: torch.Tensor, eps: float) -> None:
    scale = W.sum(dim=1, keepdim=True).clamp_min_(eps)  # (B, 1, R)
    W.div_(scale)
    H.mul_(scale.transpose(1, 2))
