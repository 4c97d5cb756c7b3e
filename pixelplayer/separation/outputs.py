"""What a separation finds (`VideoSeparation`) and the files it writes for the page to read.

OUT/manifest.json lists them, written last: a manifest means the folder is complete. Beside it
frame.jpg, energy.npy/.png, sounding.npy/.png (with a grounding head), motion.npy/.png (with an
audio-motion embedding), overlay.mp4 (the heat map over the video, with the original audio),
mixture.wav, sources/source_<i>.wav|.png|_spec.png, points/point_<i>.wav|_spec.png,
boxes/box_<i>.wav|_spec.png and cells/cell_<r>_<c>.wav.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from PIL import Image

from pixelplayer.atomic import write_text_atomic
from pixelplayer.audio import downmix, load_soundtrack, resample, save_audio
from pixelplayer.errors import PixelPlayerError
from pixelplayer.separation.maps import blend_heat, heat_levels, highlight, spectrogram_png
from pixelplayer.separation.regions import cell_centres, cell_of
from pixelplayer.video import write_video


@dataclass
class VideoSeparation:
    """What `Separator.separate_video` finds; arrays are numpy, waveforms (., L) at `sr`."""

    sr: int
    mixture: np.ndarray  # (L,) the soundtrack, mono, at sr
    frame_times: np.ndarray  # (T,) s; sampled frame t shows [t, t + 1/fps)
    energy: np.ndarray  # (T, h, w) float32 sound energy per cell of the feature grid
    labels: np.ndarray  # (h, w) source index per cell, -1 for silent cells
    source_waves: np.ndarray  # (S, L)
    point_waves: np.ndarray  # (P, L)
    cell_waves: np.ndarray  # (grid * grid, L), row-major over a lattice spread over the frame
    source_masks: np.ndarray  # (S, h, w) bool: the cells of each source
    points: list[tuple[int, int]]  # (x, y) pixels of the original frame
    point_cells: np.ndarray  # (P, 2) feature-grid (row, col) under each point
    lattice_cells: np.ndarray  # (grid * grid, 2) feature-grid (row, col) of each lattice cell
    grid: int  # the lattice is grid x grid
    fps: float  # sampled frames per second
    width: int  # original frame size
    height: int
    duration: float  # s
    threshold: float  # mean cell energy from which a cell sounds (0.5: a grounding head's)
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)  # x0, y0, x1, y1
    box_waves: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    # (T, h_m, w_m) in [0, 1]: where the motion goes with the sound (an audio-motion embedding's
    # response, `pixelplayer.motion_map`), when the separator has one
    motion: np.ndarray | None = None
    seconds: float = 0.0  # processing time, writing the files included
    # the soundtrack as players play it: which audio stream, where it starts on the video's
    # clock (s; placed there), and what was done to read it (one line each)
    audio_stream: int = 0
    audio_offset: float = 0.0
    notes: list[str] = field(default_factory=list)
    # (T, h, w) in [0, 1]: the probability that each cell makes the sound heard then (a
    # grounding head's; absolute, so a frame where nothing sounds is dark), when the model has
    # one; then the sources are its sounding groups of cells, and `sure` (S,) says how sure
    sounding: np.ndarray | None = None
    sure: np.ndarray | None = None

    @property
    def feature_grid(self) -> tuple[int, int]:
        return self.labels.shape

    def cell_at(self, x: float, y: float) -> tuple[int, int]:
        """The feature-grid cell (row, col) under pixel (x, y) of the original frame."""
        return cell_of(x, y, self.width, self.height, self.feature_grid)

    def cell_centres(self) -> np.ndarray:
        """(h, w, 2) centre (x, y) of every feature-grid cell in original pixels."""
        return cell_centres(self.width, self.height, self.feature_grid)


OUTPUT_FILES = {"sources": "source", "points": "point", "cells": "cell", "boxes": "box"}


def overlay_audio(path: Path, stream: int | None = None) -> tuple[np.ndarray, int]:
    """The original soundtrack at its own rate, on the video's clock, (L, C) with C <= 2,
    for overlay.mp4."""
    track = load_soundtrack(path, sr=None, mono=False, allow_silent=True, stream=stream)
    wav, sr = track.wav, track.sr
    if wav.shape[1] > 2:
        wav = downmix(wav)[0][:, None]
    rates = av.codec.Codec("aac", "w").audio_rates or []
    if rates and sr not in rates:  # AAC has a fixed list of rates
        wav, sr = resample(wav, sr, 44100), 44100
    return wav, sr


def write_outputs(
    result: VideoSeparation,
    frames: list[np.ndarray] | None,
    video: Path,
    out: Path,
    model: str = "",
    start: float | None = None,
) -> Path:
    """Write the files the separation page reads; returns out/manifest.json."""
    if not frames:
        raise PixelPlayerError(f"{video}: no frames kept to draw the outputs from")
    r, sr = result, result.sr
    out.mkdir(parents=True, exist_ok=True)
    for sub, stem in OUTPUT_FILES.items():  # an earlier run's files would be left unnamed
        for old in (out / sub).glob(f"{stem}_*"):
            old.unlink()
    for sub in ("sources", "points", "cells") + (("boxes",) if r.boxes else ()):
        (out / sub).mkdir(exist_ok=True)
    frame = frames[len(frames) // 2]
    dh, dw = frame.shape[:2]
    Image.fromarray(frame).save(out / "frame.jpg", quality=90)
    np.save(out / "energy.npy", r.energy.astype(np.float32))
    mean = r.energy.mean(0)
    Image.fromarray(blend_heat(frame[None], heat_levels(mean)[None])[0]).save(out / "energy.png")
    sounding_files = {}
    if r.sounding is not None:
        np.save(out / "sounding.npy", r.sounding.astype(np.float32))
        heat = r.sounding.mean(0)[None]  # absolute: not scaled to the loudest
        Image.fromarray(blend_heat(frame[None], heat)[0]).save(out / "sounding.png")
        sounding_files = {"sounding": "sounding.npy", "sounding_png": "sounding.png"}
    else:
        for old in ("sounding.npy", "sounding.png"):  # an earlier run's map would be shown
            (out / old).unlink(missing_ok=True)
    motion_files = {}
    if r.motion is not None:
        np.save(out / "motion.npy", r.motion)
        heat = heat_levels(r.motion.mean(0))[None]
        Image.fromarray(blend_heat(frame[None], heat)[0]).save(out / "motion.png")
        motion_files = {"motion": "motion.npy", "motion_png": "motion.png"}
    else:
        for old in ("motion.npy", "motion.png"):  # an earlier run's map would be shown
            (out / old).unlink(missing_ok=True)
    levels = r.sounding if r.sounding is not None else heat_levels(r.energy)
    overlay = np.empty((len(frames), dh, dw, 3), np.uint8)
    for t0 in range(0, len(frames), 32):  # bounded float temporaries
        part = np.stack(frames[t0 : t0 + 32])
        overlay[t0 : t0 + 32] = blend_heat(part, levels[t0 : t0 + 32])
    audio, audio_sr = overlay_audio(video, r.audio_stream)
    write_video(out / "overlay.mp4", overlay, r.fps, audio, audio_sr)
    save_audio(out / "mixture.wav", r.mixture, sr)

    manifest_sources = []
    for i, wave in enumerate(r.source_waves):
        base = f"sources/source_{i}"
        save_audio(out / f"{base}.wav", wave, sr)
        Image.fromarray(highlight(frame, r.source_masks[i])).save(out / f"{base}.png")
        spectrogram_png(out / f"{base}_spec.png", wave)
        cells = [[int(a), int(b)] for a, b in np.argwhere(r.source_masks[i])]
        manifest_sources.append(
            {
                "index": i,
                "wav": f"{base}.wav",
                "png": f"{base}.png",
                "spectrogram": f"{base}_spec.png",
                "cells": cells,
                **({"sure": round(float(r.sure[i]), 3)} if r.sure is not None else {}),
            }
        )
    manifest_points = []
    for i, ((x, y), wave) in enumerate(zip(r.points, r.point_waves, strict=True)):
        base = f"points/point_{i}"
        save_audio(out / f"{base}.wav", wave, sr)
        spectrogram_png(out / f"{base}_spec.png", wave)
        manifest_points.append(
            {"x": x, "y": y, "wav": f"{base}.wav", "spectrogram": f"{base}_spec.png"}
        )
    manifest_boxes = []
    for i, (box, wave) in enumerate(zip(r.boxes, r.box_waves, strict=True)):
        base = f"boxes/box_{i}"
        save_audio(out / f"{base}.wav", wave, sr)
        spectrogram_png(out / f"{base}_spec.png", wave)
        manifest_boxes.append(
            {"box": list(box), "wav": f"{base}.wav", "spectrogram": f"{base}_spec.png"}
        )
    manifest_cells = []
    for n, wave in enumerate(r.cell_waves):
        row, col = divmod(n, r.grid)
        name = f"cells/cell_{row}_{col}.wav"
        save_audio(out / name, wave, sr)
        fr, fc = r.lattice_cells[n]
        manifest_cells.append(
            {
                "row": row,
                "col": col,
                "x0": round(col * dw / r.grid),
                "y0": round(row * dh / r.grid),
                "x1": round((col + 1) * dw / r.grid),
                "y1": round((row + 1) * dh / r.grid),
                "wav": name,
                "feature_cell": [int(fr), int(fc)],
            }
        )
    manifest = {
        "video": str(video),
        "width": r.width,
        "height": r.height,
        "duration": round(r.duration, 3),
        "audio": {
            "stream": r.audio_stream,
            "offset": round(r.audio_offset, 4),
            "notes": list(r.notes),
        },
        "sr": sr,
        "fps": r.fps,
        "grid": list(r.feature_grid),
        "frame": "frame.jpg",
        "energy": "energy.npy",
        "energy_png": "energy.png",
        **sounding_files,
        **motion_files,
        "overlay": "overlay.mp4",
        "mixture": "mixture.wav",
        "sources": manifest_sources,
        "points": manifest_points,
        "cells": manifest_cells,
        "boxes": manifest_boxes,
        "model": model,
        "seconds": round(time.perf_counter() - start if start else r.seconds, 2),
    }
    path = out / "manifest.json"
    write_text_atomic(path, json.dumps(manifest, indent=1))  # last: the folder is complete
    return path
