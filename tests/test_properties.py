"""Seeded property tests of the audio core: invariants that must hold for any shape, length or
rate, checked on examples drawn by hypothesis (derandomized, so every run draws the same ones).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pixelplayer.audio import (
    LOG_BASE,
    _logfreq_rows,
    istft,
    resample,
    stft,
    unwarp_logfreq,
    warp_logfreq,
)
from pixelplayer.data.dataset import MixDataset, SampleConfig, fixed_mixtures
from pixelplayer.data.index import Clip, frame_path
from pixelplayer.mixsep import SpecConfig, logits_to_masks, network_input, targets
from pixelplayer.nmf import kl_divergence, kl_nmf
from pixelplayer.oracles import binary_masks, ideal_binary_mask, ideal_ratio_mask, ratio_masks

# small example counts: the whole file runs in seconds on 2 shared cores
FAST = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FEW = settings(FAST, max_examples=10)

RATES = st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000])
FFT = st.sampled_from([64, 126, 256, 510, 1022])


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- STFT -------------------------------------------------------------------------------------


@FAST
@given(
    n_fft=FFT,
    hop_div=st.sampled_from([2, 4, 8]),
    batch=st.lists(st.integers(1, 3), max_size=2),
    extra=st.integers(1, 3000),
    seed=st.integers(0, 2**16),
)
def test_istft_inverts_stft(n_fft, hop_div, batch, extra, seed):
    hop = n_fft // hop_div
    length = n_fft // 2 + extra  # centred frames reflect-pad n_fft // 2 samples
    wav = torch.randn(*batch, length, generator=_gen(seed), dtype=torch.float64)
    spec = stft(wav, n_fft, hop)  # (*batch, F, T) complex
    assert spec.shape == (*batch, n_fft // 2 + 1, 1 + length // hop)
    back = istft(spec, length, n_fft, hop)  # (*batch, length)
    assert back.shape == wav.shape
    torch.testing.assert_close(back, wav, atol=1e-9, rtol=0)


# --- log-frequency warp -----------------------------------------------------------------------


@FAST
@given(rows=st.integers(2, 600))
def test_logfreq_row_maps_are_inverse(rows):
    # the warp reads input position p(u); the unwarp reads u(p): u(p(x)) = x on the same grid
    forward = (_logfreq_rows(rows, inverse=False, device=None).double() + 1) / 2  # in [0, 1]
    u = torch.log1p(forward * (LOG_BASE - 1.0)) / math.log(LOG_BASE)
    grid = torch.linspace(0.0, 1.0, rows, dtype=torch.float64)
    torch.testing.assert_close(u, grid, atol=1e-5, rtol=0)
    assert (forward.diff() > 0).all()  # more rows per Hz at low frequencies, never folded


@FAST
@given(
    bins=st.integers(2, 513),
    rows=st.integers(2, 300),
    frames=st.integers(1, 40),
    channels=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_warp_is_per_column_and_stays_in_range(bins, rows, frames, channels, seed):
    x = torch.rand(2, channels, bins, frames, generator=_gen(seed))
    y = warp_logfreq(x, rows)  # (2, C, rows, frames)
    assert y.shape == (2, channels, rows, frames)
    # bilinear reads along frequency only: each output is a convex mix of its own column
    lo, hi = x.amin(dim=2, keepdim=True), x.amax(dim=2, keepdim=True)
    assert (y >= lo - 1e-6).all() and (y <= hi + 1e-6).all()
    # the first and last rows are the first and last bins
    torch.testing.assert_close(y[:, :, 0], x[:, :, 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(y[:, :, -1], x[:, :, -1], atol=1e-5, rtol=0)
    # columns do not mix: shuffling time shuffles the output the same way
    perm = torch.randperm(frames, generator=_gen(seed + 1))
    torch.testing.assert_close(warp_logfreq(x[..., perm], rows), y[..., perm], atol=1e-5, rtol=0)


@FAST
@given(bins=st.integers(16, 600), rows=st.integers(64, 400), frames=st.integers(1, 8))
def test_unwarp_of_warp_returns_a_frequency_ramp(bins, rows, frames):
    # x[f] = f is linear, so the warp samples it exactly; the unwarp interpolates the warped
    # curve g(u) = (F-1)(B^u - 1)/(B - 1) linearly between rows, an error of at most
    # h^2/8 max g'' with h = 1 / (rows - 1); the sampling positions are float32 (1e-6 of a bin
    # each at most)
    ramp = torch.arange(bins, dtype=torch.float64).view(1, 1, bins, 1).expand(1, 1, bins, frames)
    back = unwarp_logfreq(warp_logfreq(ramp, rows), bins)  # (1, 1, bins, frames)
    h = 1.0 / (rows - 1)
    bound = h**2 / 8 * (bins - 1) * math.log(LOG_BASE) ** 2 * LOG_BASE / (LOG_BASE - 1)
    assert (back - ramp).abs().max().item() <= bound + 1e-6 * bins
    # a constant survives both ways exactly, whatever the sizes
    const = torch.full((1, 1, bins, frames), 0.37, dtype=torch.float64)
    torch.testing.assert_close(unwarp_logfreq(warp_logfreq(const, rows), bins), const)


@FAST
@given(bins=st.integers(2, 513), rows=st.integers(2, 300), seed=st.integers(0, 2**16))
def test_warp_keeps_order_along_frequency(bins, rows, seed):
    rising = torch.rand(1, 1, bins, 3, generator=_gen(seed)).cumsum(dim=2)
    assert (warp_logfreq(rising, rows).diff(dim=2) >= -1e-5).all()
    assert (unwarp_logfreq(rising, rows).diff(dim=2) >= -1e-5).all()


# --- masks ------------------------------------------------------------------------------------

MAGS = dict(
    b=st.integers(1, 3),
    n=st.integers(1, 5),
    f=st.integers(1, 20),
    t=st.integers(1, 20),
    silent=st.floats(0.0, 0.9),
    seed=st.integers(0, 2**16),
)


def _mags(b, n, f, t, silent, seed) -> torch.Tensor:
    """(B, N, F, T) magnitudes with a share of exactly silent bins (also silent in all N)."""
    gen = _gen(seed)
    mags = torch.rand(b, n, f, t, generator=gen)
    mags[torch.rand(b, n, f, t, generator=gen) < silent] = 0.0
    mags[..., : f // 3, :] = 0.0  # bands silent in every source
    return mags


@FAST
@given(**MAGS)
def test_ratio_masks_sum_to_one(b, n, f, t, silent, seed):
    mags = _mags(b, n, f, t, silent, seed)
    masks = ratio_masks(mags)
    assert ((masks >= 0) & (masks <= 1)).all()
    torch.testing.assert_close(masks.sum(dim=1), torch.ones(b, f, t))
    # where the sources sound, each source's share is its magnitude over the total
    total = mags.sum(dim=1, keepdim=True)
    sounding = (total > 1e-8).expand_as(mags)
    torch.testing.assert_close((masks * total)[sounding], mags[sounding])


@FAST
@given(**MAGS)
def test_binary_masks_are_one_hot_on_the_loudest(b, n, f, t, silent, seed):
    mags = _mags(b, n, f, t, silent, seed)
    masks = binary_masks(mags)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(masks.sum(dim=1), torch.ones(b, f, t))
    torch.testing.assert_close((masks * mags).sum(dim=1), mags.amax(dim=1))


@FAST
@given(
    b=st.integers(1, 2),
    n=st.integers(1, 4),
    t=st.integers(1, 12),
    combine=st.sampled_from(["independent", "softmax"]),
    threshold=st.sampled_from([None, 0.3, 0.5]),
    scale=st.floats(0.1, 50.0),
    seed=st.integers(0, 2**16),
)
def test_masks_from_logits(b, n, t, combine, threshold, scale, seed):
    cfg = SpecConfig(combine=combine, mask="binary" if threshold is not None else "ratio")
    logits = torch.randn(b, n, 16, t, generator=_gen(seed)) * scale
    masks = logits_to_masks(logits, cfg, threshold)  # (B, N, 16, T)
    assert masks.shape == logits.shape and ((masks >= 0) & (masks <= 1)).all()
    if threshold is not None:
        assert set(masks.unique().tolist()) <= {0.0, 1.0}
    elif combine == "softmax":  # the sources share out every bin
        torch.testing.assert_close(masks.sum(dim=1), torch.ones(b, 16, t))
    # a larger logit never gets a smaller mask
    order = logits.argsort(dim=1)
    assert (masks.gather(1, order).diff(dim=1) >= -1e-6).all()


@FEW
@given(
    n=st.integers(1, 3),
    length=st.integers(600, 4000),
    mask=st.sampled_from(["binary", "ratio"]),
    log_freq=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_training_targets_partition_every_bin(n, length, mask, log_freq, seed):
    cfg = SpecConfig(n_fft=254, hop=64, freq_rows=64, mask=mask, log_freq=log_freq)
    audios = torch.randn(2, n, length, generator=_gen(seed))
    _, mag = network_input(audios.sum(dim=1), cfg)  # (2, 1, R, T)
    masks, weight = targets(audios, mag, cfg)  # (2, N, R, T) each
    assert masks.shape == (2, n, *mag.shape[-2:]) and weight.shape == masks.shape
    torch.testing.assert_close(masks.sum(dim=1), torch.ones(2, *mag.shape[-2:]))
    assert (weight > 0).all()


@FEW
@given(
    b=st.integers(1, 2),
    n=st.integers(1, 4),
    n_fft=st.sampled_from([126, 254, 510]),
    extra=st.integers(1, 3000),
    oracle=st.sampled_from([ideal_binary_mask, ideal_ratio_mask]),
    seed=st.integers(0, 2**16),
)
def test_ideal_masks_reconstruct_the_mixture(b, n, n_fft, extra, oracle, seed):
    # the masks of every bin sum to 1, so the estimates (mixture phase) sum to the mixture
    length = n_fft // 2 + extra
    refs = torch.randn(b, n, length, generator=_gen(seed), dtype=torch.float64)
    mix = refs.sum(dim=1)
    est = oracle(mix, refs, n_fft=n_fft, hop=n_fft // 4)  # (B, N, L)
    assert est.shape == refs.shape
    torch.testing.assert_close(est.sum(dim=1), mix, atol=1e-9, rtol=0)


# --- the dataset's mixtures ---------------------------------------------------------------------

SR = 4000
CLASSES = ("drums", "flute", "violin")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Clip]:
    """Two 3 s clips per class: noise at distinct levels, 24 tiny frames at 8 fps."""
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    out = []
    for k, cls in enumerate(CLASSES):
        for j in range(2):
            audio, frames = root / f"{cls}{j}.wav", root / f"{cls}{j}"
            sf.write(audio, (0.1 * (k + 1) * rng.standard_normal(3 * SR)).astype(np.float32), SR)
            frames.mkdir()
            for i in range(24):
                Image.new("RGB", (8, 8), (40 * k, 20 * i, 100)).save(frame_path(frames, i))
            out.append(Clip(audio, frames, 24, cls, 3.0, f"{cls}/{j}"))
    return out


@FEW
@given(
    num_mix=st.integers(1, 3),
    audio_len=st.integers(100, 2 * SR),
    train=st.booleans(),
    seed=st.integers(0, 2**16),
    item=st.integers(0, 50),
)
def test_dataset_mixture_is_the_sum_of_its_sources(clips, num_mix, audio_len, train, seed, item):
    cfg = SampleConfig(sr=SR, audio_len=audio_len, num_frames=2, stride_frames=4, frame_size=8)
    cfg.num_mix = num_mix
    mixtures = None if train else fixed_mixtures(clips, cfg, item + 1, seed)
    data = MixDataset(clips, cfg, mixtures=mixtures, length=item + 1, seed=seed, train=train)
    got = data[item]
    assert got["audios"].shape == (num_mix, audio_len)
    assert got["frames"].shape == (num_mix, 3, 2, 8, 8)
    torch.testing.assert_close(got["mix"], got["audios"].sum(dim=0), atol=1e-6, rtol=0)
    # each source is its clip's window, scaled by its gain and 1/N
    mix = data.mixture(item)
    if num_mix <= len(CLASSES):
        assert len({data.by_id[v].cls for v in mix.videos}) == num_mix  # distinct classes
    for j, (vid, start) in enumerate(zip(mix.videos, mix.starts, strict=True)):
        first = int(round(start * SR))
        wav, _ = sf.read(str(data.by_id[vid].audio_path), dtype="float32")
        window = np.zeros(audio_len, np.float32)
        part = wav[first : first + audio_len]
        window[: len(part)] = part
        gain = mix.gains[j] if mix.gains else 1.0
        assert train or gain == 1.0  # evaluation mixtures are never rescaled
        np.testing.assert_allclose(got["audios"][j].numpy(), window * gain / num_mix, atol=1e-6)


# --- NMF --------------------------------------------------------------------------------------


@FAST
@given(
    b=st.integers(1, 3),
    f=st.integers(2, 24),
    t=st.integers(2, 24),
    rank=st.integers(1, 6),
    zeros=st.floats(0.0, 0.6),
    seed=st.integers(0, 2**16),
)
def test_kl_nmf_is_nonnegative_and_never_increases_the_divergence(b, f, t, rank, zeros, seed):
    gen = _gen(seed)
    V = torch.rand(b, f, t, generator=gen, dtype=torch.float64) * 3
    V[torch.rand(b, f, t, generator=gen) < zeros] = 0.0
    W, H = kl_nmf(V, rank, iters=0, seed=seed)
    previous = kl_divergence(V, W, H)  # (B,)
    for _ in range(15):  # one multiplicative update at a time, from where the last stopped
        W, H = kl_nmf(V, rank, iters=1, W=W, H=H)
        assert (W >= 0).all() and (H >= 0).all()
        torch.testing.assert_close(W.sum(dim=1), torch.ones(b, rank, dtype=torch.float64))
        now = kl_divergence(V, W, H)
        assert (now <= previous * (1 + 1e-9) + 1e-12).all(), (previous, now)
        previous = now


@FAST
@given(
    f=st.integers(2, 24),
    t=st.integers(2, 24),
    rank=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_supervised_nmf_keeps_the_bases_and_lowers_the_divergence(f, t, rank, seed):
    gen = _gen(seed)
    V = torch.rand(f, t, generator=gen, dtype=torch.float64)
    bases = torch.rand(f, rank, generator=gen, dtype=torch.float64)
    W, H = kl_nmf(V, rank, iters=0, W=bases, update_w=False, seed=seed)
    previous = kl_divergence(V, W, H)
    for _ in range(10):
        W, H = kl_nmf(V, rank, iters=1, W=bases, H=H, update_w=False)
        torch.testing.assert_close(W, bases, atol=0, rtol=0)
        assert (H >= 0).all()
        now = kl_divergence(V, W, H)
        assert (now <= previous * (1 + 1e-9) + 1e-12).all(), (previous, now)
        previous = now


# --- resampling -------------------------------------------------------------------------------


@FAST
@given(
    sr_in=RATES,
    sr_out=RATES,
    length=st.integers(1, 20000),
    channels=st.sampled_from([None, 1, 2]),
    seed=st.integers(0, 2**16),
)
def test_resample_length_follows_the_rate_ratio(sr_in, sr_out, length, channels, seed):
    rng = np.random.default_rng(seed)
    shape = (length,) if channels is None else (length, channels)
    wav = rng.uniform(-0.5, 0.5, shape).astype(np.float32)
    out = resample(wav, sr_in, sr_out)
    assert out.dtype == np.float32 and out.shape[1:] == wav.shape[1:]
    assert abs(len(out) - length * sr_out / sr_in) <= 0.5 + 1e-9  # rounded to the nearest sample
    if sr_in == sr_out:
        np.testing.assert_array_equal(out, wav)


@FAST
@given(sr_in=RATES, sr_out=RATES, seconds=st.floats(0.3, 1.0), cycles=st.floats(0.02, 0.3))
def test_resample_keeps_a_tone_below_both_nyquists(sr_in, sr_out, seconds, cycles):
    # a tone at `cycles` of the lower Nyquist frequency keeps its amplitude and frequency
    freq = cycles * min(sr_in, sr_out) / 2
    t_in = np.arange(int(seconds * sr_in)) / sr_in
    out = resample(np.sin(2 * np.pi * freq * t_in).astype(np.float32), sr_in, sr_out)
    t_out = np.arange(len(out)) / sr_out
    edge = int(0.05 * sr_out)  # the filters' edge effects
    expected = np.sin(2 * np.pi * freq * t_out)
    np.testing.assert_allclose(out[edge:-edge], expected[edge:-edge], atol=2e-3)
