"""BSS-eval metrics against mir_eval, unscored items, aggregation, ideal masks and oracles."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from pixelplayer.metrics import aggregate, bss_eval, mixture_sdr, nsdr, score_batch
from pixelplayer.oracles import (
    binary_masks,
    ideal_binary_mask,
    ideal_ratio_mask,
    mixture,
    ratio_masks,
)

SR = 11025
TOL_DB = 0.05  # agreement required with mir_eval


def mir_eval_scores(ref: np.ndarray, est: np.ndarray) -> np.ndarray:
    """(B, N, L) pairs -> (3, B, N): mir_eval's bss_eval_sources SDR, SIR, SAR, no permutation."""
    separation = pytest.importorskip("mir_eval.separation")
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # its deprecation notice
        for r, e in zip(ref.astype(np.float64), est.astype(np.float64), strict=True):
            rows.append(separation.bss_eval_sources(r, e, compute_permutation=False)[:3])
    return np.stack([np.stack(r) for r in rows], axis=1)


def ours(scores: dict) -> np.ndarray:
    return np.stack([scores[k] for k in ("sdr", "sir", "sar")])


def harmonic(f0: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """A harmonic tone with vibrato, a slow envelope and a little noise: (n,) float32."""
    t = np.arange(n) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))) / SR
    wav = sum(np.sin(h * phase + rng.uniform(0, 6)) / h for h in range(1, 9))
    env = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t + rng.uniform(0, 6))
    return (0.2 * env * wav + 1e-3 * rng.standard_normal(n)).astype(np.float32)


def leaky_estimates(ref: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Reference + low-passed interference from the other sources + white noise."""
    others = ref.sum(axis=1, keepdims=True) - ref
    leak = lfilter([0.3], [1, -0.7], others, axis=-1)
    gain = rng.uniform(0.05, 0.4, ref.shape[:2] + (1,))
    noise = 0.01 * ref.std(axis=-1, keepdims=True) * rng.standard_normal(ref.shape)
    return (ref + gain * leak + noise).astype(np.float32)


def tones(b: int, n: int, seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    length = int(seconds * SR)
    return np.stack(
        [[harmonic(rng.uniform(110, 600), length, rng) for _ in range(n)] for _ in range(b)]
    )


# --- bss_eval against mir_eval ------------------------------------------------------------


@pytest.mark.parametrize("n_src, seconds", [(2, 2.0), (3, 1.0)])
def test_bss_eval_matches_mir_eval_synthetic(n_src, seconds):
    rng = np.random.default_rng(n_src)
    ref = tones(2, n_src, seconds, seed=n_src)
    est = leaky_estimates(ref, rng)
    got = bss_eval(ref, est)
    assert got["status"] == ["ok", "ok"]
    assert got["sdr"].shape == (2, n_src)
    np.testing.assert_allclose(ours(got), mir_eval_scores(ref, est), atol=TOL_DB, rtol=0)


def _real_clips(real_data, seconds: float = 3.0, offset: float = 20.0) -> np.ndarray:
    """(1, 2, L) float32: `seconds` of the shortest file of the first two instrument classes."""
    from pixelplayer.audio import load_audio

    folders = sorted(p for p in (real_data / "audio").glob("*") if p.is_dir())
    picks = [min(f.glob("*.mp4"), key=lambda p: p.stat().st_size) for f in folders[:2]]
    if len(picks) < 2:
        pytest.skip("need two instrument classes under real/audio")
    start, length = int(offset * SR), int(seconds * SR)
    clips = [load_audio(p, sr=SR)[0][start : start + length] for p in picks]
    return np.stack(clips)[None]


def test_bss_eval_matches_mir_eval_real_audio(real_data):
    # the case of the reported fast_bss_eval failure: float32 instrument audio, 3 s at 11025 Hz
    ref = _real_clips(real_data)
    mix = ref.sum(axis=1)
    leaky = leaky_estimates(ref, np.random.default_rng(0))
    ibm = ideal_binary_mask(torch.from_numpy(mix), torch.from_numpy(ref)).numpy()
    for est in (leaky, ibm):
        got = bss_eval(torch.from_numpy(ref), torch.from_numpy(est))  # tensors, as training passes
        assert got["status"] == ["ok"]
        np.testing.assert_allclose(ours(got), mir_eval_scores(ref, est), atol=TOL_DB, rtol=0)


def test_mixture_sdr_and_nsdr():
    ref = tones(2, 2, 1.5, seed=4)
    est = leaky_estimates(ref, np.random.default_rng(4))
    mix = ref.sum(axis=1)
    expected = mir_eval_scores(ref, np.repeat(mix[:, None], 2, axis=1))[0]
    np.testing.assert_allclose(mixture_sdr(ref, mix), expected, atol=TOL_DB, rtol=0)
    scores = score_batch(ref, est, mix)
    np.testing.assert_allclose(scores["sdr_mix"], expected, atol=TOL_DB, rtol=0)
    np.testing.assert_allclose(nsdr(ref, est, mix), scores["sdr"] - expected, atol=TOL_DB, rtol=0)
    np.testing.assert_allclose(scores["nsdr"], scores["sdr"] - scores["sdr_mix"])


def test_perfect_estimate_and_gain_invariance():
    ref = tones(1, 2, 1.0, seed=5)
    perfect = bss_eval(ref, ref)
    assert (perfect["sdr"] > 100).all() and (perfect["sar"] > 100).all()
    est = leaky_estimates(ref, np.random.default_rng(5))
    a, b = bss_eval(ref, est), bss_eval(ref * 3.0, est * 1e-3)
    for k in ("sdr", "sir", "sar"):
        np.testing.assert_allclose(a[k], b[k], atol=1e-6)


def test_unscorable_items_are_reported_not_dropped():
    ref = tones(5, 2, 0.5, seed=6)
    est = leaky_estimates(ref, np.random.default_rng(6))
    ref[1, 0] = 0.0  # silent reference
    est[2, 1] = 1e-7  # near-zero estimate (below -100 dBFS)
    est[3, 0, 10] = np.nan
    mix = ref.sum(axis=1)
    scores = score_batch(ref, est, mix)
    assert scores["status"] == [
        "ok",
        "silent reference",
        "silent estimate",
        "non-finite estimate",
        "ok",
    ]
    bad = [1, 2, 3]
    for k in ("sdr", "sir", "sar", "sdr_mix", "nsdr"):
        assert np.isnan(scores[k][bad]).all(), k
        assert np.isfinite(scores[k][[0, 4]]).all(), k
    # the scored items are unaffected by their unscorable neighbours
    alone = score_batch(ref[[0, 4]], est[[0, 4]], mix[[0, 4]])
    for k in ("sdr", "sir", "sar", "nsdr"):
        np.testing.assert_allclose(scores[k][[0, 4]], alone[k])
    assert np.isnan(mixture_sdr(ref, mix)[1]).all()
    summary = aggregate(scores)
    assert summary["count"] == 2 and summary["n_items"] == 5
    assert summary["unscored"] == {
        "silent reference": 1,
        "silent estimate": 1,
        "non-finite estimate": 1,
    }
    assert summary["mean"]["sdr"] == pytest.approx(np.mean(scores["sdr"][[0, 4]]))


# --- aggregate ------------------------------------------------------------------------------


def test_aggregate_hand_example():
    nan = float("nan")
    results = {
        "sdr": np.array([[1.0, 3.0], [nan, nan], [5.0, 7.0], [2.0, 10.0]]),
        "sir": np.array([[2.0, 2.0], [nan, nan], [4.0, 4.0], [6.0, 6.0]]),
        "sar": np.array([[0.0, 1.0], [nan, nan], [2.0, 3.0], [4.0, 5.0]]),
        "nsdr": np.array([[1.0, 1.0], [nan, nan], [2.0, 2.0], [3.0, 9.0]]),
        "status": ["ok", "silent reference", "ok", "ok"],
    }
    classes = np.array(
        [["flute", "cello"], ["flute", "cello"], ["cello", "flute"], ["flute", "tuba"]]
    )
    out = aggregate(results, classes=classes)
    assert out["count"] == 3 and out["n_items"] == 4
    assert out["unscored"] == {"silent reference": 1}
    assert out["mean"]["sdr"] == pytest.approx(28 / 6)
    assert out["median"]["sdr"] == pytest.approx(4.0)
    assert out["mean"]["nsdr"] == pytest.approx(3.0)
    assert out["median"]["sar"] == pytest.approx(2.5)
    per = out["per_class"]
    assert set(per) == {"flute", "cello", "tuba"}
    # flute: sdr 1 (item 0), 7 (item 2), 2 (item 3); the silent item's flute is not counted
    assert per["flute"]["count"] == 3
    assert per["flute"]["mean"]["sdr"] == pytest.approx(10 / 3)
    assert per["flute"]["median"]["sdr"] == pytest.approx(2.0)
    assert per["cello"]["mean"]["sdr"] == pytest.approx(4.0)
    assert per["tuba"]["mean"]["nsdr"] == pytest.approx(9.0)
    # evaluate.py's form: metrics dict, statuses and labels given separately; and a list of batches
    metrics = {k: v for k, v in results.items() if k != "status"}
    assert aggregate(metrics, results["status"], classes) == out
    batches = [{k: v[:2] for k, v in results.items()}, {k: v[2:] for k, v in results.items()}]
    assert aggregate(batches)["mean"] == out["mean"]


# --- masks and oracles ----------------------------------------------------------------------


def test_masks_partition_every_bin():
    gen = torch.Generator().manual_seed(0)
    mags = torch.rand(2, 3, 17, 9, generator=gen)
    mags[0, :, 0, 0] = 0.0  # a bin silent in every source
    mags[1, 1, 2, 3] = mags[1, 0, 2, 3] = 5.0  # a tie for the loudest
    binary = binary_masks(mags)
    assert binary.shape == mags.shape
    assert set(binary.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(binary.sum(1), torch.ones(2, 17, 9))
    assert torch.equal(binary.argmax(1), mags.argmax(1))
    ratio = ratio_masks(mags)
    torch.testing.assert_close(ratio.sum(1), torch.ones(2, 17, 9))
    torch.testing.assert_close(ratio[0, :, 0, 0], torch.full((3,), 1 / 3))
    torch.testing.assert_close(ratio[1, :, 4, 4], mags[1, :, 4, 4] / mags[1, :, 4, 4].sum())


def test_oracles_beat_the_mixture():
    refs = torch.from_numpy(tones(2, 2, 2.0, seed=7))
    mix = refs.sum(1)
    gains = {}
    for name, oracle in (("ibm", ideal_binary_mask), ("irm", ideal_ratio_mask), ("mix", mixture)):
        est = oracle(mix, refs)
        assert est.shape == refs.shape and est.dtype == refs.dtype
        scores = score_batch(refs, est, mix)
        assert scores["status"] == ["ok", "ok"]
        gains[name] = np.mean(scores["nsdr"])
    assert gains["ibm"] > 10.0  # a wide margin over the mixture
    assert gains["irm"] > 3.0
    assert gains["mix"] == pytest.approx(0.0, abs=1e-6)


def test_oracles_with_three_sources():
    refs = torch.from_numpy(tones(1, 3, 1.0, seed=8))
    mix = refs.sum(1)
    ibm, irm = ideal_binary_mask(mix, refs), ideal_ratio_mask(mix, refs)
    for est in (ibm, irm):
        assert est.shape == (1, 3, refs.shape[-1]) and torch.isfinite(est).all()
        # the masks partition the mixture, so the estimates add back up to it
        torch.testing.assert_close(est.sum(1), mix, atol=1e-4, rtol=0)
        assert (score_batch(refs, est, mix)["nsdr"] > 3.0).all()
    assert torch.equal(mixture(mix, refs), mix[:, None].expand(-1, 3, -1))
    with pytest.raises(ValueError):
        ideal_binary_mask(mix[:, :-1], refs)
