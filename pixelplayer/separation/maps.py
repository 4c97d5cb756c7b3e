"""Pictures of results: spectrograms and masks for the pages, heat maps over video frames.

One dark-to-bright colour ramp (`LUT`) serves every picture, so a level means the same colour
on the spectrograms, the energy maps and the overlay video.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pixelplayer.audio import stft
from pixelplayer.mixsep import SpecConfig

IMAGE_SIZE = (400, 200)  # (width, height) of spectrogram and mask pictures
FLOOR_DB = 80.0  # spectrograms show this range below their reference level
# a perceptually ordered dark-to-bright ramp (close to matplotlib's "inferno"), as anchors
RAMP = np.array(
    [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21]]
    + [[250, 193, 39], [252, 255, 164]],
    np.float64,
)
LUT = (
    np.stack(
        [np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(RAMP)), c) for c in RAMP.T], axis=1
    )
    .round()
    .astype(np.uint8)
)  # (256, 3): the ramp for 8-bit levels

# --- spectrograms and masks -------------------------------------------------------------------


def heatmap(
    values: np.ndarray, size: tuple[int, int] = IMAGE_SIZE, color: bool = True
) -> Image.Image:
    """(F, T) values in [0, 1], row 0 the lowest frequency -> PIL image, low frequencies at the
    bottom; `color` uses the dark-to-bright ramp, else grey levels."""
    v = np.clip(np.nan_to_num(np.asarray(values, np.float64)), 0.0, 1.0)[::-1]
    if color:
        img = Image.fromarray(LUT[np.round(v * 255).astype(np.int64)], "RGB")
    else:
        img = Image.fromarray(np.round(v * 255).astype(np.uint8), "L")
    return img.resize(size, Image.BILINEAR)


def magnitude(wav: np.ndarray, spec: SpecConfig | None = None) -> np.ndarray:
    """(L,) audio -> (R, T) STFT magnitude in the network's frequency layout (log-warped when
    the config says so), so spectrogram pictures line up with mask pictures."""
    spec = spec or SpecConfig()
    mag = stft(torch.as_tensor(np.asarray(wav, np.float32)), spec.n_fft, spec.hop).abs()
    return spec.to_net(mag[None, None])[0, 0].numpy()


def spectrogram_png(
    path: str | Path,
    wav: np.ndarray,
    spec: SpecConfig | None = None,
    ref: float | None = None,
    size: tuple[int, int] = IMAGE_SIZE,
) -> Path:
    """Write the log-magnitude spectrogram of (L,) audio as a colour PNG.

    `ref` is the magnitude drawn brightest (default: the loudest bin of this audio); pass the
    mixture's for sources and estimates, so a quiet estimate also looks quiet.
    """
    mag = magnitude(wav, spec)
    ref = float(mag.max()) if ref is None else ref
    db = 20.0 * np.log10(np.maximum(mag, 1e-10) / max(ref, 1e-10))
    return _save(heatmap(1.0 + db / FLOOR_DB, size), path)


def mask_png(path: str | Path, mask: np.ndarray, size: tuple[int, int] = IMAGE_SIZE) -> Path:
    """Write an (R, T) mask in [0, 1] (network layout, row 0 the lowest) as a grey PNG."""
    return _save(heatmap(mask, size, color=False), path)


def _save(img: Image.Image, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


# --- heat maps over frames --------------------------------------------------------------------


def heat_levels(energy: np.ndarray, ref: float | None = None) -> np.ndarray:
    """Energy -> [0, 1] as amplitude, sqrt(energy / ref) (default ref: the maximum).

    Linear, not in dB: mask energies of sounding and silent cells often differ by less than
    20 dB, and a log scale then colours every cell alike.
    """
    ref = float(energy.max()) if ref is None else ref
    if ref <= 0:
        return np.zeros_like(energy, np.float32)
    return np.sqrt(np.clip(energy / ref, 0, 1)).astype(np.float32)


def blend_heat(frames: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 frames and (T, h, w) levels in [0, 1] -> heat overlays, uint8.

    Maps are upsampled bilinearly to the frame; quiet cells leave the picture as it is.
    (torch, not numpy: multithreaded, a third of the time on the overlay's frames)
    """
    t, hh, ww = frames.shape[:3]
    up = F.interpolate(torch.from_numpy(levels)[:, None], size=(hh, ww), mode="bilinear")
    up = up[:, 0].clamp_(0, 1)  # (T, H, W)
    colour = torch.from_numpy(LUT)[(up * 255).long()].float()  # (T, H, W, 3)
    base = torch.from_numpy(np.array(frames)).float()  # a copy: decoded frames are read-only
    out = base.add_((colour - base).mul_(up.mul_(0.7)[..., None]))
    return out.round_().to(torch.uint8).numpy()


def highlight(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Darken the frame outside the cells of `mask` (h, w); (H, W, 3) uint8."""
    hh, ww = frame.shape[:2]
    up = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((ww, hh), Image.NEAREST))
    keep = (up > 127)[..., None]
    return np.where(keep, frame, (frame * 0.25).astype(np.uint8))
