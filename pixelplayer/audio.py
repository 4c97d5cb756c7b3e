"""Audio I/O and spectral helpers.

Audio is float32 in [-1, 1]. A file that decodes to silence or holds NaN/Inf raises `MediaError`;
it is never replaced by zeros. A video's audio is read as players play it (`load_soundtrack`):
on the video's clock, from the stream that holds sound, without DC, mixed to mono so that
channels in opposite phase do not cancel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
import torch.nn.functional as F

from pixelplayer.errors import MediaError
from pixelplayer.video import decode_failure, path_problem, stream_start, video_start

SOUNDFILE_SUFFIXES = {".wav", ".flac", ".ogg", ".aiff", ".aif"}
SILENCE_RMS = 1e-4  # below this RMS (about -80 dBFS) a clip counts as silent
LOG_BASE = 21.5  # curvature of the log-frequency warp


def resample(wav: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample (L,) or (L, C) float audio with soxr (high quality)."""
    if sr_in == sr_out:
        return wav.astype(np.float32, copy=False)
    return soxr.resample(wav, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)


@dataclass
class Soundtrack:
    """A file's audio as players play it, and what was done to make it so."""

    wav: np.ndarray  # (L,) mono or (L, C), float32
    sr: int
    stream: int = 0  # which audio stream, counted from 0 among the audio streams
    streams: int = 1  # how many audio streams the file has
    offset: float = 0.0  # s the audio starts after the video's first frame (< 0: before)
    notes: list[str] = field(default_factory=list)  # what was done, one line each


def _decode_stream(path: Path, index: int) -> tuple[np.ndarray, int, float, int]:
    """Decode audio stream `index` of any container with PyAV -> ((L, C) float32, rate,
    offset s on the video's clock, number of audio streams)."""
    import av

    try:
        with av.open(str(path)) as container:
            count = len(container.streams.audio)
            if not count:
                raise MediaError(path, "no audio stream")
            if index >= count:
                have = f"{count} audio streams, numbered 0..{count - 1}"
                raise MediaError(
                    path,
                    "no audio stream",
                    f"--audio-stream {index}: the file has "
                    + (have if count > 1 else "one audio stream, number 0"),
                )
            stream = container.streams.audio[index]
            origin = video_start(container) if container.streams.video else None
            chunks = []
            first = None  # the first decoded sample's time, s
            rate = stream.codec_context.sample_rate or stream.rate
            for frame in container.decode(stream):
                # to_ndarray of a planar frame is (C, n); packed is (1, n*C)
                arr = frame.to_ndarray()
                channels = frame.layout.nb_channels
                if not frame.format.is_planar:
                    arr = arr.reshape(-1, channels).T
                chunks.append(_to_float(arr))
                rate = frame.sample_rate
                if first is None:
                    first = frame.time if frame.time is not None else stream_start(stream)
    except MediaError:
        raise
    except Exception as exc:  # PyAV raises many kinds: InvalidDataError, EOFError, ...
        raise MediaError(path, "unreadable", decode_failure(exc)) from exc
    if not chunks:
        raise MediaError(path, "no audio", "the audio stream holds no samples")
    offset = 0.0 if origin is None else float(first) - origin
    return np.concatenate(chunks, axis=1).T, int(rate), offset, count


def _to_float(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.int16:
        return arr.astype(np.float32) / 32768.0
    if arr.dtype == np.int32:
        return arr.astype(np.float32) / 2147483648.0
    if arr.dtype == np.uint8:
        return (arr.astype(np.float32) - 128.0) / 128.0
    return arr.astype(np.float32, copy=False)


def _read(path: Path, index: int) -> tuple[np.ndarray, int, float, int]:
    """((L, C) float32, rate, offset on the video's clock, audio streams) of stream `index`."""
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        if index > 0:
            raise MediaError(
                path, "no audio stream", f"--audio-stream {index}: a sound file has stream 0 only"
            )
        try:
            wav, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except Exception as exc:
            raise MediaError(path, "unreadable", decode_failure(exc)) from exc
        return wav, int(rate), 0.0, 1
    return _decode_stream(path, index)


def _check_finite(path: Path, wav: np.ndarray) -> None:
    if wav.shape[0] == 0:
        raise MediaError(path, "no audio", "zero samples")
    if not np.isfinite(wav).all():
        bad = int(wav.size - np.isfinite(wav).sum())
        raise MediaError(
            path,
            "non-finite audio",
            f"{bad} of {wav.size} samples hold NaN or Inf; re-encode the audio with finite samples",
        )


def _audible(wav: np.ndarray) -> bool:
    """Finite, and sound once the DC offset is removed."""
    if not wav.size or not np.isfinite(wav).all():
        return False
    return rms(wav - wav.mean(axis=0)) >= SILENCE_RMS


def remove_dc(wav: np.ndarray) -> tuple[np.ndarray, float]:
    """(L, C) audio less each channel's mean -> (audio, the largest offset removed)."""
    mean = wav.mean(axis=0, dtype=np.float64)
    largest = float(np.abs(mean).max()) if mean.size else 0.0
    return wav - mean.astype(np.float32), largest


def downmix(wav: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(L, C) -> (L,) mono that cannot cancel, and a note when it is not the plain mean.

    The mean of the channels, unless they cancel in it: when its energy is under a quarter of
    what channels of these levels would give were they unrelated (e.g. L = -R, or correlation
    below about -0.75 between two equal channels), the loudest channel alone is taken.
    """
    if wav.shape[1] == 1:
        return wav[:, 0], None
    mono = wav.mean(axis=1)
    power = np.mean(np.square(wav, dtype=np.float64), axis=0)  # (C,)
    unrelated = power.sum() / wav.shape[1] ** 2
    mixed = float(np.mean(np.square(mono, dtype=np.float64)))
    if unrelated <= 0 or mixed >= 0.25 * unrelated:
        return mono, None
    loudest = int(np.argmax(power))
    corr = ""
    if wav.shape[1] == 2:
        c = np.corrcoef(wav[:, 0], wav[:, 1])[0, 1]
        corr = f", correlation {c:.2f}" if np.isfinite(c) else ""
    level = 10 * np.log10(max(mixed, 1e-30) / power[loudest])
    note = (
        f"the channels cancel when mixed to mono ({level:.0f} dB{corr}): "
        f"took channel {loudest} of {wav.shape[1]} alone"
    )
    return wav[:, loudest], note


def load_soundtrack(
    path: str | Path,
    sr: int | None = None,
    mono: bool = True,
    allow_silent: bool = False,
    stream: int | None = None,
    align: bool = True,
) -> Soundtrack:
    """The audio of a sound file or video as players play it.

    - stream: the audio stream (from 0); None takes the first that holds sound (players take
      the first, but a silent commentary track first is common in camera files).
    - align: a video's audio is placed on the video's clock by its start time: silence before
      audio that starts late, the part before the first frame cut from audio that starts early.
    - DC is removed (it is no sound: a constant offset would pass the silence check).
    - mono: the mean of the channels, or the loudest channel when they cancel (`downmix`).
    Raises MediaError for unreadable, non-finite or (unless allowed) silent audio.
    """
    path = Path(path)
    problem = path_problem(path)
    if problem is not None:
        raise MediaError(path, *problem)
    if stream is not None and stream < 0:
        raise MediaError(path, "no audio stream", f"--audio-stream {stream}: give 0 or more")
    notes = []
    wav, rate, offset, count = _read(path, stream or 0)
    index = stream or 0
    if stream is None and count > 1 and not _audible(wav):
        for other in range(1, count):
            found = _read(path, other)
            if _audible(found[0]):
                wav, rate, offset, _ = found
                index = other
                notes.append(f"audio stream 0 holds no sound: took stream {other} of {count}")
                break
    _check_finite(path, wav)
    wav, dc = remove_dc(wav)
    if dc >= 0.01:
        notes.append(f"removed a DC offset of {dc:.2f}")
    if mono:
        wav, note = downmix(wav)
        if note:
            notes.append(note)
    if sr is not None and sr != rate:
        wav = resample(wav, rate, sr)
        rate = sr
    if not allow_silent and rms(wav) < SILENCE_RMS:
        where = f"; none of its {count} audio streams does" if count > 1 and stream is None else ""
        if dc >= 0.01:
            where += f" (only a constant DC offset of {dc:.2f}, which is no sound)"
        raise MediaError(
            path,
            "silent",
            f"RMS {rms(wav):.2e}: the audio holds no sound{where}; give one that does",
        )
    if align:
        wav, note = _align(path, wav, rate, offset)
        if note:
            notes.append(note)
    else:
        offset = 0.0
    wav = np.ascontiguousarray(wav, dtype=np.float32)
    return Soundtrack(wav, int(rate), index, count, offset, notes)


ALIGN_NOTE_S = 0.001  # offsets this small (an encoder's priming) are applied without a note


def _align(path: Path, wav: np.ndarray, rate: int, offset: float) -> tuple[np.ndarray, str | None]:
    """Audio that starts `offset` s after the video's first frame, on the video's clock."""
    n = int(round(offset * rate))
    if n == 0:
        return wav, None
    if n > 0:
        pad = np.zeros((n, *wav.shape[1:]), np.float32)
        wav = np.concatenate([pad, wav])
        note = (
            f"the audio starts {offset:.2f} s after the video: "
            f"{offset:.2f} s of silence put before it"
        )
    else:
        if -n >= len(wav):
            raise MediaError(
                path, "no audio", f"the audio ends {-offset:.2f} s before the video starts"
            )
        wav = wav[-n:]
        note = f"the audio starts {-offset:.2f} s before the video: its first {-offset:.2f} s cut"
    return wav, note if abs(offset) >= ALIGN_NOTE_S else None


def load_audio(
    path: str | Path,
    sr: int | None = None,
    mono: bool = True,
    allow_silent: bool = False,
    stream: int | None = None,
) -> tuple[np.ndarray, int]:
    """Load audio from a sound file or the audio stream of a video, as `load_soundtrack`.

    Returns (wav, rate): wav is (L,) when mono, else (L, C), float32; rate is `sr` when given.
    Raises MediaError for unreadable, non-finite or (unless allowed) silent audio.
    """
    track = load_soundtrack(path, sr, mono, allow_silent, stream)
    return track.wav, track.sr


def save_audio(path: str | Path, wav: np.ndarray, sr: int) -> None:
    """Write (L,) or (L, C) float audio as 16-bit PCM WAV (clipped to [-1, 1])."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0)
    sf.write(str(path), wav, sr, subtype="PCM_16")


def rms(wav: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if wav.size else 0.0


# --- spectrograms ------------------------------------------------------------------------------


def stft(wav: torch.Tensor, n_fft: int = 1022, hop: int = 256) -> torch.Tensor:
    """(..., L) real -> (..., n_fft//2+1, 1 + L//hop) complex, Hann window, centred."""
    shape = wav.shape
    window = torch.hann_window(n_fft, device=wav.device, dtype=wav.dtype)
    spec = torch.stft(
        wav.reshape(-1, shape[-1]),
        n_fft=n_fft,
        hop_length=hop,
        window=window,
        center=True,
        return_complex=True,
    )
    return spec.reshape(*shape[:-1], *spec.shape[-2:])


def istft(spec: torch.Tensor, length: int, n_fft: int = 1022, hop: int = 256) -> torch.Tensor:
    """(..., F, T) complex -> (..., length) real; the exact inverse of `stft`."""
    shape = spec.shape
    window = torch.hann_window(n_fft, device=spec.device, dtype=spec.real.dtype)
    wav = torch.istft(
        spec.reshape(-1, *shape[-2:]),
        n_fft=n_fft,
        hop_length=hop,
        window=window,
        center=True,
        length=length,
    )
    return wav.reshape(*shape[:-2], length)


def _logfreq_rows(n_out: int, inverse: bool, device=None) -> torch.Tensor:
    """Sampling positions in [-1, 1] along frequency for the log warp.

    Output row u in [0, 1] reads input position (B**u - 1) / (B - 1), rescaled to [-1, 1], with
    B = 21.5 as in Sound of Pixels, so low frequencies get more rows. Unlike the reference
    curve (which starts at bin 12 and drops the lowest 130 Hz), this one maps the first and last
    rows to the first and last bins, so the closed-form inverse covers every linear bin.
    """
    v = torch.linspace(0.0, 1.0, n_out, device=device)
    if inverse:
        u = torch.log1p(v * (LOG_BASE - 1.0)) / np.log(LOG_BASE)
    else:
        u = (torch.pow(LOG_BASE, v) - 1.0) / (LOG_BASE - 1.0)
    return u * 2.0 - 1.0


def _warp(x: torch.Tensor, n_out: int, inverse: bool) -> torch.Tensor:
    # x: (B, C, F_in, T) -> (B, C, n_out, T)
    b, _, _, t = x.shape
    rows = _logfreq_rows(n_out, inverse, device=x.device).to(x.dtype)
    cols = torch.linspace(-1.0, 1.0, t, device=x.device, dtype=x.dtype)
    grid = torch.stack(torch.meshgrid(cols, rows, indexing="xy"), dim=-1)  # (n_out, T, 2)
    grid = grid.unsqueeze(0).expand(b, -1, -1, -1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def warp_logfreq(x: torch.Tensor, n_out: int = 256) -> torch.Tensor:
    """Linear-frequency (B, C, F, T) -> log-frequency (B, C, n_out, T)."""
    return _warp(x, n_out, inverse=False)


def unwarp_logfreq(x: torch.Tensor, n_out: int = 512) -> torch.Tensor:
    """Log-frequency (B, C, F', T) -> linear-frequency (B, C, n_out, T), inverse of the warp."""
    return _warp(x, n_out, inverse=True)
