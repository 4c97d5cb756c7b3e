"""KL-NMF (pixelplayer.nmf), the NMF + MFCC + k-means baseline and permutation-invariant scoring."""

import json
import warnings

import numpy as np
import pytest
import torch

from pixelplayer import nmf
from pixelplayer.baselines import NmfKmeansSeparator, basis_mfcc
from pixelplayer.cli import main
from pixelplayer.evaluate import best_order
from pixelplayer.metrics import best_permutation, score_batch
from pixelplayer.mixsep import SpecConfig
from pixelplayer.nmf import PRECISIONS, kl_divergence, kl_nmf
from tests.helpers import tone

SR = 11025


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny problems: with cores shared, a second thread only adds waits (100x slower seen)."""
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)


def _synthetic(rng, f=48, r=4, t=60):
    """Well-conditioned V = W H: each basis owns a band of rows (plus a little overlap)."""
    w = 0.05 * rng.random((f, r))
    for k in range(r):
        w[k * f // r : (k + 1) * f // r, k] += 1 + rng.random(f // r)
    h = rng.gamma(2.0, 1.0, (r, t))
    return torch.from_numpy(w), torch.from_numpy(h), torch.from_numpy(w @ h)


def test_divergence_decreases_every_iteration():
    rng = np.random.default_rng(0)
    V = torch.from_numpy(rng.gamma(2.0, 1.0, (2, 40, 50)).astype(np.float32))
    W, H = kl_nmf(V, 5, iters=0)  # the initialisation
    history = [kl_divergence(V, W, H)]
    for _ in range(40):
        W, H = kl_nmf(V, 5, iters=1, W=W, H=H)
        history.append(kl_divergence(V, W, H))
    history = torch.stack(history)  # (41, B)
    assert (history[1:] <= history[:-1] * (1 + 1e-6)).all()  # float32 rounding slack
    assert (history[-1] < 0.5 * history[0]).all()
    assert torch.allclose(W.sum(dim=1), torch.ones(2, 5))  # unit-sum bases


def test_supervised_nmf_recovers_activations():
    W_true, H_true, V = _synthetic(np.random.default_rng(1))
    W, H = kl_nmf(V, 4, iters=300, W=W_true, update_w=False)  # 2-D in, 2-D out, float64
    assert H.shape == H_true.shape and H.dtype == torch.float64
    assert torch.equal(W, W_true)  # fixed bases come back as given
    assert (H - H_true).norm() / H_true.norm() < 0.02
    assert (W @ H - V).norm() / V.norm() < 0.005
    # shared (F, R) bases for a batch
    Vb = torch.stack([V, 2 * V])
    _, Hb = kl_nmf(Vb, 4, iters=300, W=W_true, update_w=False)
    assert torch.allclose(Hb[1], 2 * Hb[0], rtol=1e-6, atol=1e-9)


def test_same_divergence_as_scikit_learn():
    from sklearn.decomposition import NMF
    from sklearn.decomposition._nmf import _initialize_nmf

    rng = np.random.default_rng(0)
    V = rng.gamma(2.0, 1.0, (6, 64, 80)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at tol=0
        models = [
            NMF(6, beta_loss="kullback-leibler", solver="mu", init="random", max_iter=100, tol=0)
            .set_params(random_state=0)
            .fit(v)
            for v in V
        ]
    # reconstruction_err_ is sqrt(2 D)
    d_sk = np.array([m.reconstruction_err_**2 / 2 for m in models])
    W, H = kl_nmf(torch.from_numpy(V), 6, iters=100)
    d = kl_divergence(torch.from_numpy(V), W, H).numpy()
    # different random starts: each item within 2 % (seen: < 1 %), the mean within 0.5 %
    assert np.all(np.abs(d / d_sk - 1) < 0.02)
    assert abs(d.mean() / d_sk.mean() - 1) < 0.005
    # from scikit-learn's own start, the same iterates: equal up to float32 rounding
    W0, H0 = _initialize_nmf(V[0], 6, init="random", random_state=0)
    W1, H1 = kl_nmf(torch.from_numpy(V[0]), 6, 100, W=torch.from_numpy(W0), H=torch.from_numpy(H0))
    assert kl_divergence(torch.from_numpy(V[0]), W1, H1).item() == pytest.approx(d_sk[0], rel=1e-4)


def test_batched_equals_per_item(monkeypatch):
    rng = np.random.default_rng(2)
    V = torch.from_numpy(rng.gamma(2.0, 1.0, (5, 30, 20)).astype(np.float32))
    W0, H0 = kl_nmf(V, 3, iters=0, seed=3)
    monkeypatch.setattr(nmf, "CPU_CHUNK_BYTES", 2 * 30 * 20 * 4)  # chunks of 2 items
    W, H = kl_nmf(V, 3, iters=30, W=W0, H=H0)
    for b in range(5):
        Wb, Hb = kl_nmf(V[b], 3, iters=30, W=W0[b], H=H0[b])
        torch.testing.assert_close(Wb @ Hb, W[b] @ H[b], rtol=1e-5, atol=1e-6)
    # the seeded start is reproducible
    torch.testing.assert_close(kl_nmf(V, 3, iters=5)[1], kl_nmf(V, 3, iters=5)[1])


def test_bfloat16_products_reach_the_float32_divergence():
    rng = np.random.default_rng(4)
    V = torch.from_numpy(rng.gamma(2.0, 1.0, (3, 40, 64)).astype(np.float32))
    d0 = kl_divergence(V, *kl_nmf(V, 5, iters=0))
    d32 = kl_divergence(V, *kl_nmf(V, 5, iters=60))
    W, H = kl_nmf(V, 5, iters=60, precision="bfloat16")
    assert W.dtype == H.dtype == torch.float32  # only the products are rounded
    d16 = kl_divergence(V, W, H)
    assert (d16 < 0.5 * d0).all()
    torch.testing.assert_close(d16, d32, rtol=0.01, atol=0)  # seen: 0.04 % on spectrograms
    # supervised: fixed float32 bases come back untouched
    Wf, _ = kl_nmf(V, 5, iters=5, W=W[0], update_w=False, precision="bfloat16")
    assert torch.equal(Wf[1], W[0])
    with pytest.raises(ValueError, match="precision 'float16'"):
        kl_nmf(V, 5, precision="float16")


def test_strided_input_gives_the_contiguous_result():
    """An STFT's magnitudes are frames-major; the factorisation must not depend on the layout."""
    rng = np.random.default_rng(5)
    V = torch.from_numpy(rng.gamma(2.0, 1.0, (2, 30, 20)).astype(np.float32))
    strided = V.transpose(1, 2).contiguous().transpose(1, 2)  # same values, other strides
    assert not strided.is_contiguous()
    for precision in PRECISIONS:
        a, b = kl_nmf(V, 3, 10, precision=precision), kl_nmf(strided, 3, 10, precision=precision)
        torch.testing.assert_close(a[0] @ a[1], b[0] @ b[1])


def test_basis_mfcc_shape():
    W = np.random.default_rng(0).random((2, 512, 7))
    assert basis_mfcc(W, SR, 13).shape == (2, 7, 13)


def _two_tones(seconds=1.5):
    """A low harmonic tone (0-1 s) and a high one (0.5-1.5 s): distinct spectra and activations.

    NMF needs activations that differ to give each source its own bases, and MFCCs describe a
    spectral envelope, so the tones differ in register (110 Hz x 7 partials, 2200 Hz x 2).
    """
    t = torch.arange(int(seconds * SR)) / SR
    low = sum(0.3 / h * torch.sin(2 * torch.pi * 110 * h * t) for h in range(1, 8)) * (t < 1.0)
    high = sum(0.2 * torch.sin(2 * torch.pi * 2200 * h * t) for h in (1, 2)) * (t > 0.5)
    noise = torch.from_numpy(tone(seconds, SR, amp=0.0, seed=1))  # 0.01 white noise
    audios = torch.stack([low + noise, high - noise])[None].float()  # (1, 2, L)
    return {"mix": audios.sum(1), "audios": audios}


def test_nmf_kmeans_separates_two_tones():
    batch = _two_tones()
    sep = NmfKmeansSeparator(SpecConfig(), rank=8, iters=200, sr=SR, device="cpu")
    est = sep(batch)
    assert est.shape == batch["audios"].shape and torch.isfinite(est).all()
    # soft masks partition the mixture: the estimates add up to it
    torch.testing.assert_close(est.sum(1), batch["mix"], atol=1e-4, rtol=0)
    ordered = best_order(batch["audios"], est)
    scores = score_batch(batch["audios"], ordered, batch["mix"])
    assert (scores["sdr"] > scores["sdr_mix"] + 10).all(), scores
    # permutation-invariant scoring finds the right order whichever way the groups came out
    assert best_permutation(batch["audios"], ordered).tolist() == [[0, 1]]
    assert best_permutation(batch["audios"], ordered.flip(1)).tolist() == [[1, 0]]
    torch.testing.assert_close(best_order(batch["audios"], ordered.flip(1)), ordered)


def test_best_permutation_of_three():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((2, 3, 4000))
    est = ref + 0.1 * rng.standard_normal(ref.shape)
    perm = np.array([[2, 0, 1], [1, 2, 0]])
    shuffled = np.take_along_axis(est, np.argsort(perm, axis=1)[..., None], axis=1)
    assert (np.take_along_axis(shuffled, perm[..., None], axis=1) == est).all()
    assert best_permutation(ref, shuffled).tolist() == perm.tolist()
    ref[1] = 0  # an item that cannot be scored keeps its order
    assert best_permutation(ref, shuffled)[1].tolist() == [0, 1, 2]


def test_eval_cli_scores_nmf_kmeans(prepared, tmp_path):
    # a run folder with only a config: the tiny clips need a short window; nothing is loaded
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("sample:\n  audio_len: 8191\n")
    out = tmp_path / "eval"
    args = ["eval", str(run), "--data", str(prepared), "--separator", "nmf-kmeans,mixture"]
    assert main([*args, "--n", "4", "--no-progress", "--out", str(out), "--device", "cpu"]) == 0
    results = json.loads((out / "metrics.json").read_text())["results"]
    assert list(results) == ["nmf-kmeans", "mixture"]
    for r in results.values():
        assert r["count"] + sum(r["unscored"].values()) == 4
    assert np.isfinite(results["nmf-kmeans"]["mean"]["sdr"])
    assert "NMF + MFCC + k-means (Spiertz & Gnann)" in (out / "metrics.md").read_text()
