import numpy as np
import pytest
import soundfile as sf
import torch

from pixelplayer.audio import (
    istft,
    load_audio,
    resample,
    save_audio,
    stft,
    unwarp_logfreq,
    warp_logfreq,
)
from pixelplayer.errors import MediaError
from tests.helpers import tone


def test_stft_shape_and_exact_inverse():
    wav = torch.from_numpy(tone(65535 / 11025, 11025))[None]  # (1, 65535)
    spec = stft(wav)
    assert spec.shape == (1, 512, 256)
    back = istft(spec, length=wav.shape[-1])
    assert torch.allclose(back, wav, atol=1e-5)


def test_warp_rows_and_round_trip_on_smooth_input():
    f = torch.linspace(0, 1, 512)
    x = (torch.sin(3 * f)[None, None, :, None] * torch.ones(2, 1, 512, 8)).contiguous()
    w = warp_logfreq(x, 256)
    assert w.shape == (2, 1, 256, 8)
    # the curve gives low frequencies more rows: row 128 reads below the middle bin
    assert w[0, 0, 128, 0] < x[0, 0, 256, 0]
    back = unwarp_logfreq(w, 512)
    assert back.shape == x.shape
    assert (back - x).abs().max() < 1e-3
    # constants survive exactly
    c = torch.full((1, 1, 512, 4), 0.7)
    assert torch.allclose(unwarp_logfreq(warp_logfreq(c)), c)


def test_warp_end_rows_are_the_end_bins():
    x = torch.arange(512.0)[None, None, :, None].expand(1, 1, 512, 3).contiguous()
    w = warp_logfreq(x, 256)
    assert w[0, 0, 0, 0] == pytest.approx(0.0, abs=1e-4)
    assert w[0, 0, -1, 0] == pytest.approx(511.0, abs=1e-3)


def test_load_resamples_and_downmixes(tmp_path):
    left = tone(1.0, 44100, 440)
    stereo = np.stack([left, 0.5 * left], axis=1)
    sf.write(tmp_path / "a.wav", stereo, 44100)
    wav, sr = load_audio(tmp_path / "a.wav", sr=11025)
    assert sr == 11025
    assert wav.shape == (11025,)
    assert wav.dtype == np.float32
    ref = resample(0.75 * left, 44100, 11025)
    assert np.abs(wav - ref).max() < 1e-3


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b""), "unreadable"),
        (lambda p: p.write_text("not audio"), "unreadable"),
        (lambda p: sf.write(p, np.zeros(1000, np.float32), 8000), "silent"),
        (
            lambda p: sf.write(p, np.array([0.1, np.nan, 0.2] * 100, np.float32), 8000, "FLOAT"),
            "non-finite audio",
        ),
    ],
)
def test_bad_audio_is_an_error_never_zeros(tmp_path, make, reason):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(MediaError) as info:
        load_audio(path)
    assert info.value.reason == reason


def test_save_round_trip(tmp_path):
    wav = tone(0.5, 11025)
    save_audio(tmp_path / "x.wav", wav, 11025)
    back, sr = load_audio(tmp_path / "x.wav")
    assert sr == 11025 and np.abs(back - wav).max() < 1e-4
