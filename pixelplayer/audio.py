"""Audio I/O and spectral helpers.

Audio is float32 in [-1, 1]. A file that decodes to silence or holds NaN/Inf raises `MediaError`;
it is never replaced by zeros.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
import torch.nn.functional as F

from pixelplayer.errors import MediaError
from pixelplayer.video import EMPTY_FILE, decode_failure

SOUNDFILE_SUFFIXES = {".wav", ".flac", ".ogg", ".aiff", ".aif"}
SILENCE_RMS = 1e-4  # below this RMS (about -80 dBFS) a clip counts as silent
LOG_BASE = 21.5  # curvature of the log-frequency warp


def resample(wav: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample (L,) or (L, C) float audio with soxr (high quality)."""
    if sr_in == sr_out:
        return wav.astype(np.float32, copy=False)
    return soxr.resample(wav, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)


def _decode_any(path: Path) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of any container with PyAV -> ((L, C) float32, rate)."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError(path, "no audio stream")
            stream = container.streams.audio[0]
            chunks = []
            rate = stream.codec_context.sample_rate or stream.rate
            for frame in container.decode(stream):
                # to_ndarray of a planar frame is (C, n); packed is (1, n*C)
                arr = frame.to_ndarray()
                channels = frame.layout.nb_channels
                if not frame.format.is_planar:
                    arr = arr.reshape(-1, channels).T
                chunks.append(_to_float(arr))
                rate = frame.sample_rate
    except MediaError:
        raise
    except Exception as exc:  # PyAV raises many kinds: InvalidDataError, EOFError, ...
        raise MediaError(path, "unreadable", decode_failure(exc)) from exc
    if not chunks:
        raise MediaError(path, "no audio", "the audio stream holds no samples")
    return np.concatenate(chunks, axis=1).T, int(rate)


def _to_float(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.int16:
        return arr.astype(np.float32) / 32768.0
    if arr.dtype == np.int32:
        return arr.astype(np.float32) / 2147483648.0
    if arr.dtype == np.uint8:
        return (arr.astype(np.float32) - 128.0) / 128.0
    return arr.astype(np.float32, copy=False)


def load_audio(
    path: str | Path, sr: int | None = None, mono: bool = True, allow_silent: bool = False
) -> tuple[np.ndarray, int]:
    """Load audio from a sound file or the audio stream of a video.

    Returns (wav, rate): wav is (L,) when mono, else (L, C), float32; rate is `sr` when given.
    Raises MediaError for unreadable, non-finite or (unless allowed) silent audio.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "missing", "no such file")
    if path.stat().st_size == 0:
        raise MediaError(path, "unreadable", EMPTY_FILE)
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        try:
            wav, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except Exception as exc:
            raise MediaError(path, "unreadable", decode_failure(exc)) from exc
    else:
        wav, rate = _decode_any(path)
    if wav.shape[0] == 0:
        raise MediaError(path, "no audio", "zero samples")
    if not np.isfinite(wav).all():
        bad = int(wav.size - np.isfinite(wav).sum())
        raise MediaError(
            path,
            "non-finite audio",
            f"{bad} of {wav.size} samples hold NaN or Inf; re-encode the audio with finite samples",
        )
    if mono:
        wav = wav.mean(axis=1)
    if sr is not None and sr != rate:
        wav = resample(wav, rate, sr)
        rate = sr
    if not allow_silent and rms(wav) < SILENCE_RMS:
        raise MediaError(
            path, "silent", f"RMS {rms(wav):.2e}: the audio holds no sound; give one that does"
        )
    return np.ascontiguousarray(wav, dtype=np.float32), int(rate)


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
