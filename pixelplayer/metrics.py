"""BSS-eval source separation metrics (SDR, SIR, SAR, NSDR) for batches of estimates.

The figures are those of bss_eval_sources v3 (`mir_eval.separation.bss_eval_sources` with
`compute_permutation=False`): estimate n is scored against reference n with a 512-tap
time-invariant distortion filter. As in fast_bss_eval, the projections reduce to quadratic
forms d^T G^-1 d of correlation statistics (G Toeplitz for SDR, block-Toeplitz for SIR/SAR);
the solver differs.

Why not fast_bss_eval 0.1.4 as is: it solves those systems with a dense `solve` in the input's
dtype. Decoded audio is float32, and the autocorrelation matrices of tonal music are too
ill-conditioned for single precision: its torch backend was off by up to 0.19 dB from mir_eval
on real instrument audio here, its CG mode (`use_cg_iter=10`, an approximation by design) by
several dB, and its numpy backend with `compute_permutation=False` raises on NumPy 2
(`np.linalg.solve` no longer takes a (..., M) right-hand side as a stack of vectors). In float64
it is exact, but its dense (512N)^3 solves make it barely faster than mir_eval on this CPU. The
reported "Pivots given to lu_solve must all be greater or equal to 1" did not reproduce here:
fast_bss_eval calls no lu_factor/lu_solve itself; that message is torch's guard inside
torch.linalg.solve against invalid pivots coming back from LAPACK, i.e. a degenerate system,
not an API change.

Here (the solver: pixelplayer.bss_projections): float64 throughout, correlations from block
FFTs, the systems solved by (block) Levinson recursion. Same figures as mir_eval to ~1e-9 dB,
about 25x faster than it on one core (benchmarks/bench_metrics.py).

Items with a silent or non-finite reference, estimate or mixture are not scored: their metrics
are NaN and `status` says why, so an evaluator can count them.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from pixelplayer.bss_projections import coherences, correlations, to_db

FILTER_LENGTH = 512  # bss_eval v3 distortion filter taps
# RMS below which a signal counts as silent: -100 dBFS, under the 16-bit quantisation floor.
SILENCE_RMS = 1e-5
OK = "ok"
METRICS = ("sdr", "sir", "sar", "sdr_mix", "nsdr")


Array = np.ndarray | torch.Tensor


# --- public API -----------------------------------------------------------------------------


def bss_eval(ref: Array, est: Array, filter_length: int = FILTER_LENGTH) -> dict[str, object]:
    """SDR, SIR, SAR of each estimate against its own reference (no permutation).

    ref, est: (B, N, L) arrays or tensors. Returns {'sdr', 'sir', 'sar': (B, N) float64 dB,
    'status': list of B str}; an item whose status is not 'ok' (e.g. 'silent reference') has
    NaN metrics.
    """
    return score_batch(ref, est, filter_length=filter_length)


def best_permutation(ref: Array, est: Array, filter_length: int = FILTER_LENGTH) -> np.ndarray:
    """Per item, the order of the estimates that maximises mean SDR: (B, N) int indices.

    `est[b, perm[b]]` then pairs estimate perm[b, n] with reference n: the scoring of
    separators whose outputs come in no particular order (unsupervised baselines). SDR of a
    pair depends on that pair only, so the N cyclic shifts of the estimates (one batched
    bss_eval) give the whole (N, N) SDR table, and all N! orders are read off it. Items that
    cannot be scored keep the identity order.
    """
    ref, est = _as_array(ref), _as_array(est)
    b, n, _ = ref.shape
    shifts = [np.roll(est, -k, axis=1) for k in range(n)]  # shift k: est (i + k) % n vs ref i
    sdr = bss_eval(np.concatenate([ref] * n), np.concatenate(shifts), filter_length)["sdr"]
    table = np.empty((b, n, n))  # [b, ref i, est j]
    rows = np.arange(n)
    for k in range(n):
        table[:, rows, (rows + k) % n] = sdr[k * b : (k + 1) * b]
    orders = np.array(list(itertools.permutations(range(n))))  # (n!, n), identity first
    mean = table[:, rows, orders].mean(axis=-1)  # (B, n!)
    best = np.nan_to_num(mean, nan=-np.inf).argmax(axis=1)
    return orders[best]


def score_batch(
    ref: Array,
    est: Array,
    mix: Array | None = None,
    filter_length: int = FILTER_LENGTH,
    silence_rms: float = SILENCE_RMS,
) -> dict[str, object]:
    """Score a batch of separations; items that cannot be scored are reported, not dropped.

    ref, est: (B, N, L); mix: optional (B, L) mixture. Returns {'sdr', 'sir', 'sar': (B, N)
    float64 dB, 'status': list of B str ('ok' or the reason)} and, when `mix` is given,
    'sdr_mix' (SDR of the mixture against each reference) and 'nsdr' = sdr - sdr_mix.
    Metrics of items whose status is not 'ok' are NaN.
    """
    return _score(ref, est, mix, filter_length, silence_rms)


def mixture_sdr(
    ref: Array, mix: Array, filter_length: int = FILTER_LENGTH, silence_rms: float = SILENCE_RMS
) -> np.ndarray:
    """SDR (dB) of the mixture (B, L) taken as the estimate of each reference (B, N, L) -> (B, N).

    NaN for items that cannot be scored (silent or non-finite reference or mixture).
    """
    return _score(ref, None, mix, filter_length, silence_rms)["sdr_mix"]


def nsdr(
    ref: Array,
    est: Array,
    mix: Array,
    filter_length: int = FILTER_LENGTH,
    silence_rms: float = SILENCE_RMS,
) -> np.ndarray:
    """Normalised SDR = SDR(est) - SDR(mix), (B, N) dB; NaN for items that cannot be scored."""
    return _score(ref, est, mix, filter_length, silence_rms)["nsdr"]


def item_status(
    ref: Array, est: Array | None, mix: Array | None = None, silence_rms: float = SILENCE_RMS
) -> list[str]:
    """Per item of (B, N, L) ref/est (and (B, L) mix): 'ok' or why it cannot be scored.

    A silent reference leaves the distortion filter undefined (singular Toeplitz system) and a
    silent estimate has no direction to project; both would give NaN or a LinAlgError.
    """
    groups = _groups(ref, est, mix)
    energy = np.concatenate([_energy(x) for _, x in groups], axis=1)
    return _status(energy, groups, silence_rms)


def aggregate(
    results: Mapping[str, object] | Sequence[Mapping[str, object]],
    status: Sequence[str] | None = None,
    classes: np.ndarray | Sequence | None = None,
) -> dict[str, object]:
    """Mean and median of each metric over the scored items, overall and per class.

    results: a `score_batch` output or a list of them (items concatenated in order), or a dict
    of (items, N) metric arrays. status: per-item status (default: results['status']; all 'ok'
    when absent). classes: optional (items, N) class label of each reference source.
    Returns {'count': scored items, 'n_items', 'unscored': {reason: items},
    'mean': {metric: float}, 'median': {metric: float},
    'per_class': {label: {'count': scored sources, 'mean': {...}, 'median': {...}}}}
    (per_class only when classes are given). Metrics are those of METRICS present in results.
    """
    if not isinstance(results, Mapping):
        results = list(results)
        merged = {
            k: np.concatenate([np.asarray(r[k], dtype=np.float64) for r in results])
            for k in METRICS
            if all(k in r for r in results)
        }
        if status is None and all("status" in r for r in results):
            status = [s for r in results for s in r["status"]]
        results = merged
    metrics = {k: np.asarray(results[k], dtype=np.float64) for k in METRICS if k in results}
    if not metrics:
        raise ValueError(f"no metrics to aggregate; expected some of {METRICS}")
    n_items = len(next(iter(metrics.values())))
    if status is None:
        status = results.get("status", [OK] * n_items)
    status = list(status)
    if len(status) != n_items:
        raise ValueError(f"{len(status)} statuses for {n_items} items")
    ok = np.array([s == OK for s in status], dtype=bool)
    out: dict[str, object] = {
        "count": int(ok.sum()),
        "n_items": n_items,
        "unscored": dict(Counter(s for s in status if s != OK)),
        **_summary({k: v[ok] for k, v in metrics.items()}),
    }
    if classes is not None:
        labels = np.asarray(classes)
        shape = next(iter(metrics.values())).shape
        if labels.shape != shape:
            raise ValueError(f"classes must be (items, N) = {shape}; got {labels.shape}")
        labels = labels[ok]
        per_class = {}
        for label in sorted(set(labels.ravel().tolist()), key=str):
            sel = labels == label
            per_class[label] = {
                "count": int(sel.sum()),
                **_summary({k: v[ok][sel] for k, v in metrics.items()}),
            }
        out["per_class"] = per_class
    return out


# --- internals ------------------------------------------------------------------------------


def _as_array(x: Array) -> np.ndarray:
    # keep the caller's float dtype: float64 copies are made a few items at a time
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        x = (x if x.dtype in (torch.float32, torch.float64) else x.double()).numpy()
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def _groups(ref: Array, est: Array | None, mix: Array | None) -> list[tuple[str, np.ndarray]]:
    """Validated inputs as (name, (B, n, L) array): references, estimates, mixture."""
    ref = _as_array(ref)
    if ref.ndim != 3:
        raise ValueError(f"ref must be (B, N, L); got {ref.shape}")
    groups = [("reference", ref)]
    if est is not None:
        est = _as_array(est)
        if est.shape != ref.shape:
            raise ValueError(f"est must be (B, N, L) = {ref.shape}; got {est.shape}")
        groups.append(("estimate", est))
    if mix is not None:
        mix = _as_array(mix)
        if mix.shape != (ref.shape[0], ref.shape[2]):
            raise ValueError(
                f"mix must be (B, L) = {(ref.shape[0], ref.shape[2])}; got {mix.shape}"
            )
        groups.append(("mixture", mix[:, None]))
    return groups


def _energy(x: np.ndarray, chunk: int = 8) -> np.ndarray:
    """(B, T, L) -> (B, T) float64 sums of squares (NaN/inf if a sample is)."""
    out = np.empty(x.shape[:2])
    for i in range(0, len(x), chunk):
        c = x[i : i + chunk].astype(np.float64)
        out[i : i + chunk] = np.einsum("btl,btl->bt", c, c)
    return out


def _status(
    energy: np.ndarray, groups: list[tuple[str, np.ndarray]], silence_rms: float
) -> list[str]:
    """energy (B, T) of the signals of `groups`, in order -> per-item status."""
    length = groups[0][1].shape[-1]
    status = [OK] * len(energy)
    col = 0
    for what, x in groups:  # references first: a bad reference makes the whole item moot
        e = energy[:, col : col + x.shape[1]]
        col += x.shape[1]
        finite = np.isfinite(e).all(axis=1)
        silent = np.sqrt(np.where(finite[:, None], e, np.inf) / length).min(axis=1) < silence_rms
        for i in np.flatnonzero(~finite | silent):
            if status[i] == OK:
                status[i] = f"non-finite {what}" if not finite[i] else f"silent {what}"
    return status


def _score(
    ref: Array, est: Array | None, mix: Array | None, p: int, silence_rms: float
) -> dict[str, object]:
    groups = _groups(ref, est, mix)
    b, n, length = groups[0][1].shape
    c, energy = correlations([x for _, x in groups], n, p)
    status = _status(energy, groups, silence_rms)
    ok = np.array([s == OK for s in status], dtype=bool)
    out: dict[str, object] = {}
    keys = (("sdr", "sir", "sar") if est is not None else ()) + (
        ("sdr_mix",) if mix is not None else ()
    )
    for key in keys:
        out[key] = np.full((b, n), np.nan)
    if ok.any():
        coh = coherences(c[ok], n, est is not None, mix is not None)
        if est is not None:
            out["sdr"][ok], out["sir"][ok], out["sar"][ok] = to_db(coh["sdr"], coh["sar"], n)
        if mix is not None:
            out["sdr_mix"][ok] = to_db(coh["mix"], coh["mix"], n)[0]
    if est is not None and mix is not None:
        out["nsdr"] = out["sdr"] - out["sdr_mix"]
    out["status"] = status
    return out


def _summary(values: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    # NaN when nothing was scored, rather than numpy's empty-slice warnings
    def stat(fn, v):
        return float(fn(v)) if v.size else float("nan")

    return {
        "mean": {k: stat(np.mean, v) for k, v in values.items()},
        "median": {k: stat(np.median, v) for k, v in values.items()},
    }
