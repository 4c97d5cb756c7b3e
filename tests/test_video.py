import numpy as np
import pytest

from pixelplayer.audio import load_audio
from pixelplayer.errors import MediaError
from pixelplayer.video import iter_frames, probe, read_frames, write_video
from tests.helpers import tone


def _frames(t, h=64, w=96):
    # each frame's brightness encodes its index, so sampling can be checked
    return np.stack([np.full((h, w, 3), 8 * i, np.uint8) for i in range(t)])


def test_write_then_read_both_streams(tmp_path):
    path = tmp_path / "v.mp4"
    write_video(path, _frames(16), fps=8, audio=tone(2.0, 11025), sr=11025)
    info = probe(path)
    assert info.has_video and info.has_audio
    assert info.fps == pytest.approx(8.0)
    assert (info.width, info.height) == (96, 64)
    assert info.sample_rate == 11025
    assert info.duration == pytest.approx(2.0, abs=0.15)
    frames = read_frames(path, fps=8)
    assert frames.shape == (16, 64, 96, 3)
    wav, sr = load_audio(path)
    assert sr == 11025 and abs(len(wav) / sr - 2.0) < 0.15


def test_resampling_frame_rate(tmp_path):
    path = tmp_path / "v25.mp4"
    write_video(path, _frames(25), fps=25)  # 1 s at 25 fps
    frames = list(iter_frames(path, fps=8, size=(48, 32)))
    assert len(frames) == 8
    assert frames[0].shape == (32, 48, 3)
    # frame k shows source frame floor(k * 25 / 8): brightness grows accordingly
    means = [f.mean() for f in frames]
    assert all(b > a for a, b in zip(means, means[1:], strict=False))


def test_missing_streams_and_junk(tmp_path):
    silent_video = tmp_path / "novideo.mp4"
    write_video(silent_video, _frames(8), fps=8)
    with pytest.raises(MediaError) as info:
        load_audio(silent_video)
    assert info.value.reason == "no audio stream"
    junk = tmp_path / "junk.mp4"
    junk.write_text("hello")
    with pytest.raises(MediaError) as info:
        probe(junk)
    assert info.value.reason == "unreadable"


def test_real_solo_frame_count(real_data):
    info = probe(real_data / "solo" / "flute_unRA0xR-XWc.mp4")
    assert info.duration == pytest.approx(93.16, abs=0.1)
    assert info.has_audio and info.sample_rate == 44100
