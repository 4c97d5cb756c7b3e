"""`pixelplayer data synth`: a MUSIC-like dataset of solo (and duet) instrument videos.

Every clip is an instrument picture on a random background with 1-3 silent distractor objects,
playing a random melody rendered from a General MIDI SoundFont with FluidSynth. The instrument
jolts and swells with its own notes (onsets and loudness envelope), so the picture's motion
carries information about the sound, as a player's motion does in MUSIC; distractors drift
independently of the audio.

Layout of OUT:
  videos/<class>/<id>.mp4      solo clips (H.264 + AAC), one folder per class
  duets/<id>.mp4               duets: two instruments in one frame, mixture audio
  stems/<id>.wav               lossless solo audio (the ground truth of a solo clip)
  stems/<id>_0.wav, _1.wav     the two parts of a duet; their sum is the duet's audio
  meta/<id>.json               classes, programs, seed, per-frame boxes, notes, stem paths
  synth.json                   the settings and class table of the whole run

Clip seeds come from (seed, class, index), so a clip is the same whatever the number of
workers and the order they run in; a second run skips clips whose files are already there.
"""

from __future__ import annotations

import argparse
import colorsys
import ctypes
import functools
import json
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from pixelplayer import checks
from pixelplayer.audio import SILENCE_RMS, resample, rms, save_audio
from pixelplayer.data import pictures
from pixelplayer.errors import PixelPlayerError
from pixelplayer.parallel import imap_unordered, worker_count
from pixelplayer.video import write_video

# The General MIDI SoundFonts of training, each from its Debian package; one is drawn per part
TRAINING_SOUNDFONTS: dict[str, str] = {
    "/usr/share/sounds/sf2/FluidR3_GM.sf2": "fluid-soundfont-gm",
    "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3": "musescore-general-soundfont-small",
    "/usr/share/sounds/sf2/sf_GMbank.sf2": "csound-soundfont",
}
DEFAULT_SOUNDFONT = Path(next(iter(TRAINING_SOUNDFONTS)))
# Held out for testing, never used in training: only `data synth --holdout sounds|both`
HOLDOUT_SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
HOLDOUT_SOUNDFONT_PACKAGE = "timgm6mb-soundfont"
HOLDOUT_KINDS = ("pictures", "sounds", "both")
DISTRACTOR_DIR = "_distractors"  # optional IMAGES/_distractors/*.png replaces the emoji ones
MIN_RENDER_SR = 22050  # render at least this fast, then resample: less aliasing at 11025 Hz


@dataclass(frozen=True)
class Instrument:
    """One class: its General MIDI sound and how it plays (its pictures: pictures.py)."""

    name: str
    program: int  # GM program 0-127; for percussion the drum kit in bank 128
    low: int  # natural MIDI note range, inclusive (unused for percussion)
    high: int
    style: str  # key of STYLES: note lengths, articulation, chords
    percussion: bool = False

    @property
    def bank(self) -> int:
        return 128 if self.percussion else 0

    @property
    def channel(self) -> int:
        return 9 if self.percussion else 0  # GM percussion lives on channel 10 (index 9)


CLASSES: dict[str, Instrument] = {
    i.name: i
    for i in (
        Instrument("violin", 40, 55, 88, "bowed"),
        Instrument("acoustic_guitar", 24, 40, 76, "plucked"),
        Instrument("trumpet", 56, 55, 82, "wind"),
        Instrument("saxophone", 65, 49, 80, "wind"),
        Instrument("flute", 73, 60, 93, "wind"),
        Instrument("accordion", 21, 53, 84, "reed"),
        Instrument("piano", 0, 40, 88, "keys"),
        Instrument("banjo", 105, 48, 81, "plucked"),
        Instrument("drums", 0, 35, 81, "drums", percussion=True),
        Instrument("french_horn", 60, 41, 77, "wind"),
        # the other instruments of the MUSIC dataset that General MIDI has
        Instrument("cello", 42, 36, 76, "bowed"),
        Instrument("clarinet", 71, 50, 89, "wind"),
        Instrument("tuba", 58, 28, 58, "wind"),
        Instrument("xylophone", 13, 53, 96, "mallet"),
    )
}

# Silent objects: everyday things that make no sound (no clocks, phones or speakers)
DISTRACTORS = tuple(pictures.DISTRACTOR_ICONS)  # their pictures: pictures.py

# How each family plays: note lengths in beats (with weights), the fraction of its length a
# note sounds (staccato .. legato), how often it rests and how often it plays a chord.
STYLES: dict[str, dict[str, Any]] = {
    "bowed": dict(beats=(0.5, 1, 1.5, 2, 3), p=(2, 4, 2, 2, 1), legato=(0.75, 1.0), rest=0.1),
    "wind": dict(beats=(0.5, 1, 1.5, 2, 3), p=(3, 4, 2, 2, 1), legato=(0.6, 0.95), rest=0.15),
    "reed": dict(beats=(0.5, 1, 2, 3), p=(3, 4, 2, 1), legato=(0.7, 1.0), rest=0.1, chord=0.3),
    "plucked": dict(beats=(0.25, 0.5, 1, 2), p=(2, 4, 3, 1), legato=(0.5, 0.95), rest=0.1),
    "keys": dict(beats=(0.25, 0.5, 1, 2), p=(2, 4, 3, 1.5), legato=(0.5, 1.0), rest=0.1),
}
STYLES["mallet"] = dict(beats=(0.25, 0.5, 1, 2), p=(3, 4, 2, 1), legato=(0.3, 0.6), rest=0.1)
STYLES["plucked"]["chord"] = 0.2
STYLES["keys"]["chord"] = 0.3

SCALES = (
    (0, 2, 4, 5, 7, 9, 11),  # major
    (0, 2, 3, 5, 7, 8, 10),  # natural minor
    (0, 2, 3, 5, 7, 9, 10),  # dorian
    (0, 2, 4, 5, 7, 9, 10),  # mixolydian
    (0, 2, 4, 7, 9),  # major pentatonic
    (0, 3, 5, 7, 10),  # minor pentatonic
    (0, 2, 3, 5, 7, 8, 11),  # harmonic minor
)
STEPS = np.array([-4, -3, -2, -1, 0, 1, 2, 3, 4])
STEP_P = np.array([2, 3, 8, 12, 3, 12, 8, 3, 2], dtype=float)
STEP_P /= STEP_P.sum()  # mostly steps, sometimes leaps
MAX_REST = 1.2  # seconds: longer silences would leave training windows without sound

BACKGROUNDS = (
    *("solid", "gradient", "noise", "stripes", "checker", "room"),
    *("wood", "marble", "fabric", "bricks"),  # textures
)

Note = tuple[float, float, int, int]  # (onset s, offset s, MIDI key, velocity)


# --- composing ---------------------------------------------------------------------------------


def _compose(
    inst: Instrument, seconds: float, rng: np.random.Generator
) -> tuple[list[Note], float]:
    """A random piece in the instrument's range: (notes, tempo in bpm)."""
    if inst.percussion:
        return _compose_drums(seconds, rng)
    style = STYLES[inst.style]
    bpm = float(rng.uniform(66, 160))
    beat = 60.0 / bpm
    # a register window inside the natural range, so clips of one class sit high or low
    span = int(min(inst.high - inst.low, rng.integers(12, 20)))
    lo = int(rng.integers(inst.low, inst.high - span + 1))
    root, scale = int(rng.integers(12)), SCALES[rng.integers(len(SCALES))]
    pitches = [p for p in range(lo, lo + span + 1) if (p - root) % 12 in scale]
    beats, p_beats = np.array(style["beats"], float), np.array(style["p"], float)
    p_beats /= p_beats.sum()
    chord_p = style.get("chord", 0.0)

    notes: list[Note] = []
    t = float(rng.uniform(0.0, 0.3))  # an early first note: no clip opens in silence
    idx = int(rng.integers(len(pitches)))
    dyn = float(rng.uniform(45, 115))
    while t < seconds:
        # one phrase: a few notes at one dynamic, articulation and crescendo
        legato = float(rng.uniform(*style["legato"]))
        slope = float(rng.normal(0, 3))
        for i in range(int(rng.integers(3, 9))):
            if t >= seconds:
                break
            length = float(rng.choice(beats, p=p_beats)) * beat
            if notes and rng.random() < style["rest"]:
                t += min(length, MAX_REST)
                continue
            idx += int(rng.choice(STEPS, p=STEP_P))
            idx = abs(idx) if idx < 0 else idx  # reflect at the edges of the window
            idx = 2 * (len(pitches) - 1) - idx if idx >= len(pitches) else idx
            idx = min(max(idx, 0), len(pitches) - 1)
            on_beat = abs(t / beat - round(t / beat)) < 0.05
            vel = int(np.clip(dyn + slope * i + rng.normal(0, 7) + 8 * on_beat, 20, 127))
            onset = max(0.0, t + float(rng.normal(0, 0.008)))  # a human's timing
            off = onset + max(0.06, length * legato)
            notes.append((onset, off, pitches[idx], vel))
            if chord_p and rng.random() < chord_p:
                for below in (2, 4):  # a triad under the melody note
                    if idx - below >= 0:
                        notes.append((onset, off, pitches[idx - below], max(20, vel - 15)))
            t += length
        if rng.random() < 0.6:  # a breath between phrases
            t += min(float(rng.uniform(0.5, 2.0)) * beat, MAX_REST)
        dyn = float(np.clip(dyn + rng.normal(0, 18), 35, 120))
    return _trim(notes, seconds), bpm


def _compose_drums(seconds: float, rng: np.random.Generator) -> tuple[list[Note], float]:
    """A groove of 16-step bars with variations and fills on GM drum keys."""
    bpm = float(rng.uniform(80, 170))
    step = 60.0 / bpm / 4
    kick_key, snare_key = int(rng.choice([35, 36])), int(rng.choice([38, 38, 40]))
    hat_key = int(rng.choice([42, 42, 51, 44]))  # closed hi-hat, ride or pedal hi-hat
    kick = rng.random(16) < 0.22
    kick[0] = True
    if rng.random() < 0.5:
        kick[8] = True
    snare = np.zeros(16, bool)
    snare[[4, 12] if rng.random() < 0.75 else [8]] = True  # backbeat or half time
    hat_every = int(rng.choice([1, 2, 2, 4]))
    toms = [50, 48, 47, 45, 43, 41]
    notes: list[Note] = []
    t0 = float(rng.uniform(0.0, 0.2))
    bar, level = 0, float(rng.uniform(0.65, 1.0))
    while t0 + bar * 16 * step < seconds:
        fill = bar % 4 == 3 and rng.random() < 0.7
        sparse = rng.random() < 0.1  # a break: kick and snare only
        for s in range(16):
            t = t0 + (bar * 16 + s) * step + float(rng.normal(0, 0.004))
            hits = []
            if fill and s >= 8:
                if rng.random() < 0.75:
                    hits.append((toms[min((s - 8) * len(toms) // 8, len(toms) - 1)], 95))
            else:
                if kick[s] or (rng.random() < 0.04):
                    hits.append((kick_key, 105))
                if snare[s]:
                    hits.append((snare_key, 110))
                elif rng.random() < 0.06:
                    hits.append((snare_key, 40))  # ghost note
                if not sparse and s % hat_every == 0:
                    accent = 20 if s % 4 == 0 else 0
                    open_hat = s == 14 and rng.random() < 0.3
                    hits.append((46 if open_hat else hat_key, 60 + accent))
            if s == 0 and bar > 0 and rng.random() < 0.25:
                hits.append((49, 110))  # crash on the downbeat
            for key, v in hits:
                vel = int(np.clip(v * level + rng.normal(0, 8), 20, 127))
                notes.append((max(0.0, t), max(0.0, t) + 0.1, key, vel))
        bar += 1
        if rng.random() < 0.3:
            level = float(np.clip(level + rng.normal(0, 0.15), 0.55, 1.0))
    return _trim(notes, seconds), bpm


def _trim(notes: list[Note], seconds: float) -> list[Note]:
    """Sorted notes inside the clip; a key's note ends before the same key sounds again (else
    its late note-off would cut the next one short)."""
    out = sorted([on, min(off, seconds), k, v] for on, off, k, v in notes if on < seconds - 0.05)
    last: dict[int, list] = {}
    for note in out:
        prev = last.get(note[2])
        if prev is not None and prev[1] > note[0]:
            prev[1] = max(prev[0] + 0.01, note[0] - 0.005)
        last[note[2]] = note
    return [(on, off, k, v) for on, off, k, v in out]


# --- rendering audio ---------------------------------------------------------------------------

_SOUNDFONTS: dict[str, tuple[Any, int]] = {}  # path -> (holder synth, sfont pointer), per process


def _fluidsynth() -> Any:
    try:
        import fluidsynth
    except (ImportError, OSError) as exc:
        raise PixelPlayerError(
            f"cannot load FluidSynth ({exc}): apt-get install libfluidsynth3 and "
            "pip install pyfluidsynth"
        ) from exc
    lib = fluidsynth._fl
    lib.fluid_synth_write_float.argtypes = [ctypes.c_void_p, ctypes.c_int] + [
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_int,
    ] * 2
    lib.fluid_synth_get_sfont_by_id.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.fluid_synth_get_sfont_by_id.restype = ctypes.c_void_p
    lib.fluid_synth_add_sfont.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.fluid_synth_remove_sfont.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.fluid_set_log_function.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    lib.fluid_set_log_function.restype = ctypes.c_void_p
    return fluidsynth


def _soundfont_list(soundfont: str | Path | Sequence[str] | None) -> list[str]:
    if soundfont is None:
        return list(TRAINING_SOUNDFONTS)
    if isinstance(soundfont, (str, Path)):
        return [str(soundfont)]
    return [str(f) for f in soundfont]


def _soundfont(path: str) -> Any:
    """The loaded SoundFont (a C pointer), loaded once per process: FluidR3 is 140 MB."""
    if path not in _SOUNDFONTS:
        fluidsynth = _fluidsynth()
        holder = fluidsynth.Synth(samplerate=float(MIN_RENDER_SR), channels=16)
        sfid = holder.sfload(path)
        if sfid < 0:
            raise PixelPlayerError(f"{path}: FluidSynth cannot load this SoundFont")
        ptr = fluidsynth._fl.fluid_synth_get_sfont_by_id(holder.synth, sfid)
        _SOUNDFONTS[path] = (holder, ptr)
    return _SOUNDFONTS[path][1]


def _expression(inst: Instrument, rng: np.random.Generator) -> dict[str, float]:
    """How one clip is played and heard: vibrato (modulation wheel, for instruments that have
    it), brightness and the room (reverberation send, size, damping)."""
    sustained = inst.style in ("bowed", "wind", "reed")
    return {
        "vibrato": int(rng.integers(0, 90)) if sustained and rng.random() < 0.7 else 0,
        "brightness": int(rng.integers(40, 128)),  # CC 74, filter cut-off where the font maps it
        "reverb": int(rng.integers(0, 110)) if rng.random() < 0.75 else 0,  # CC 91 send
        "room": round(float(rng.uniform(0.1, 0.95)), 3),
        "damping": round(float(rng.uniform(0.0, 0.8)), 3),
    }


def _render(
    inst: Instrument,
    notes: list[Note],
    seconds: float,
    sr: int,
    soundfont: str,
    expression: dict[str, float] | None = None,
) -> np.ndarray:
    """Render notes offline -> (L,) float32 mono at `sr`, L = round(seconds * sr).

    A fresh synth per clip (sharing the loaded SoundFont): a reused one keeps hidden state
    (block phase, voice and effect history) that would make a clip depend on the one before.
    """
    fluidsynth = _fluidsynth()
    lib = fluidsynth._fl
    sfont = _soundfont(soundfont)
    rate = max(sr, MIN_RENDER_SR)
    n = int(round(seconds * rate))
    left, right = np.zeros(n, np.float32), np.zeros(n, np.float32)
    synth = fluidsynth.Synth(samplerate=float(rate), channels=16)
    try:
        sfid = lib.fluid_synth_add_sfont(synth.synth, sfont)
        if synth.program_select(inst.channel, sfid, inst.bank, inst.program) != 0:
            raise PixelPlayerError(
                f"{soundfont}: no preset bank {inst.bank} program {inst.program} "
                f"for class {inst.name}"
            )
        if expression:
            synth.set_reverb(expression["room"], expression["damping"], 0.8, 1.0)
            synth.cc(inst.channel, 91, int(expression["reverb"]))
            synth.cc(inst.channel, 1, int(expression["vibrato"]))
            synth.cc(inst.channel, 74, int(expression["brightness"]))
        # note-offs sort before note-ons at one sample, so a repeated key sounds again
        events = sorted(
            [(int(on * rate), 1, k, v) for on, _, k, v in notes]
            + [(int(off * rate), 0, k, 0) for _, off, k, _ in notes]
        )
        pos = 0
        for at, is_on, key, vel in [*events, (n, -1, 0, 0)]:
            at = min(at, n)
            if at > pos:
                lib.fluid_synth_write_float(
                    synth.synth, at - pos, left.ctypes.data, pos, 1, right.ctypes.data, pos, 1
                )
                pos = at
            if is_on == 1:
                synth.noteon(inst.channel, key, vel)
            elif is_on == 0:
                synth.noteoff(inst.channel, key)
    finally:
        # removing the font resets every channel, which FluidSynth logs as warnings: mute them
        old = lib.fluid_set_log_function(2, None, None)
        lib.fluid_synth_remove_sfont(synth.synth, sfont)
        lib.fluid_set_log_function(2, old, None)
        synth.delete()  # deleting first would free the shared SoundFont
    wav = (left + right) * 0.5
    if rate != sr:
        wav = resample(wav, rate, sr)
    length = int(round(seconds * sr))
    return np.pad(wav[:length], (0, max(0, length - len(wav)))).astype(np.float32)


# --- pictures ----------------------------------------------------------------------------------


def _pick_picture(name: str, images: str | None, holdout: bool, rng: np.random.Generator) -> str:
    """The label of a picture of a class or silent object: the user's (--images), a held-out
    one (--holdout pictures) or one of the training library (pictures.py)."""
    if images is not None:
        files = pictures.image_files(Path(images) / name)
        if files:
            return str(files[int(rng.integers(len(files)))])
    labels = pictures.holdout_pictures(name) if holdout else pictures.training_pictures(name)
    if not labels:
        raise PixelPlayerError(f"no picture of {name} is installed (run scripts/setup.sh)")
    return labels[int(rng.integers(len(labels)))]


@functools.lru_cache(maxsize=4096)  # a picture is asked for at the same sizes frame after frame
def _alpha_at(label: str, flip: bool, angle: float, w: int, h: int) -> np.ndarray:
    alpha = pictures.posed_alpha(label, {"flip": flip, "angle": angle})
    a = np.asarray(alpha.resize((max(w, 1), max(h, 1)), Image.BILINEAR), np.float32) / 255.0
    a.setflags(write=False)
    return a


def picture_alpha(label: str, w: int, h: int, pose: dict | None = None) -> np.ndarray:
    """(h, w) float32 opacity of a meta file's picture (its "image" and "pose") drawn at
    w x h, as the clip drew it: which pixels of a box show the object. Shared between calls:
    do not modify it."""
    pose = pose or {}
    return _alpha_at(label, bool(pose.get("flip")), float(pose.get("angle", 0.0)), w, h)


class _Sprite:
    """A picture drawn at several sizes: premultiplied RGB and 1 - alpha, cached per size."""

    def __init__(self, image: Image.Image):
        self.image = image
        self.cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def at(self, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        """(premultiplied (h, w, 3) float32, 1 - alpha (h, w, 1) float32)."""
        if (w, h) not in self.cache:
            # Pillow resizes RGBA with premultiplied alpha, so edges do not darken
            a = np.asarray(self.image.resize((w, h), Image.BILINEAR), dtype=np.float32)
            alpha = a[..., 3:] / 255.0
            self.cache[w, h] = (a[..., :3] * alpha, 1.0 - alpha)
        return self.cache[w, h]


# --- scenes --------------------------------------------------------------------------------------


def _colour(rng: np.random.Generator) -> np.ndarray:
    h, s, v = rng.uniform(0, 1), rng.uniform(0.05, 0.65), rng.uniform(0.25, 0.95)
    return np.array(colorsys.hsv_to_rgb(h, s, v), np.float32) * 255


def _background(size: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A random backdrop (H, W, 3) float32 in [0, 255] and its kind; drawn once per clip."""
    kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size  # (H, W) in [0, 1)
    c0, c1 = _colour(rng), _colour(rng)
    angle = rng.uniform(0, 2 * np.pi)
    along = np.cos(angle) * xx + np.sin(angle) * yy  # (H, W) position along a direction
    if kind == "solid":
        t = np.zeros_like(xx)
    elif kind == "gradient":
        t = (along - along.min()) / max(float(np.ptp(along)), 1e-6)
    elif kind == "noise":
        cells = int(rng.integers(3, 12))
        grid = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
        t = np.asarray(grid.resize((size, size), Image.BICUBIC), np.float32) / 255
    elif kind == "stripes":
        wave = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 9) * along + rng.uniform(0, 6.3))
        t = (wave > 0.5).astype(np.float32) if rng.random() < 0.5 else wave
    elif kind == "checker":
        n = int(rng.integers(3, 10))
        t = ((np.floor(xx * n) + np.floor(yy * n)) % 2).astype(np.float32)
    elif kind == "wood":  # rings of a trunk cut lengthwise, wobbling with the grain
        rings = np.hypot((xx - rng.uniform(-1, 2)) * rng.uniform(0.3, 1), yy - rng.uniform(-1, 2))
        t = 0.5 + 0.5 * np.sin(rings * rng.uniform(20, 60) + 3 * _turbulence(size, rng))
        t = t**2
    elif kind == "marble":
        t = 0.5 + 0.5 * np.sin(along * rng.uniform(4, 12) + 6 * _turbulence(size, rng))
        t = t**3
    elif kind == "fabric":  # a weave of threads
        n = rng.uniform(30, 90)
        t = 0.5 + 0.25 * (np.sin(xx * n) * np.sign(np.sin(yy * n / 2)) + np.sin(yy * n))
        t = np.clip(t + 0.3 * (_turbulence(size, rng) - 0.5), 0, 1)
    elif kind == "bricks":
        rows = int(rng.integers(6, 14))
        y = yy * rows
        x = xx * rows / 2 + 0.5 * (np.floor(y) % 2)
        mortar = (np.minimum(y % 1, 1 - y % 1) < 0.06) | (np.minimum(x % 1, 1 - x % 1) < 0.03)
        t = np.where(mortar, 1.0, 0.25 * _turbulence(size, rng)).astype(np.float32)
    else:  # room: a wall over a darker floor, as in a rehearsal video
        horizon = rng.uniform(0.55, 0.8)
        wall = c0 * (0.85 + 0.15 * (1 - yy[..., None] / horizon))
        floor = c1 * 0.7 * (0.7 + 0.3 * (yy[..., None] - horizon) / (1 - horizon))
        img = np.where(yy[..., None] < horizon, wall, floor)
        t = None
    if t is not None:
        img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    grain = rng.uniform(0, 6)
    img = img + rng.normal(0, 1, (size, size, 1)).astype(np.float32) * grain
    return np.clip(img, 0, 255).astype(np.float32), kind


def _turbulence(size: int, rng: np.random.Generator, octaves: int = 4) -> np.ndarray:
    """(size, size) float32 smooth noise in [0, 1]: octaves of upsampled random grids."""
    total = np.zeros((size, size), np.float32)
    for o in range(octaves):
        cells = 3 * 2**o
        grid = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
        total += np.asarray(grid.resize((size, size), Image.BICUBIC), np.float32) / 255 / 2**o
    return (total - total.min()) / max(float(np.ptp(total)), 1e-6)


def _frame_envelope(wav: np.ndarray, sr: int, fps: float, frames: int) -> np.ndarray:
    """RMS of the audio around each frame's time k / fps -> (T,) normalised to max 1."""
    c = np.concatenate([[0.0], np.cumsum(np.square(wav, dtype=np.float64))])
    t = np.arange(frames) / fps
    a = np.clip(np.round((t - 0.5 / fps) * sr), 0, len(wav)).astype(int)
    b = np.clip(np.round((t + 0.5 / fps) * sr), 0, len(wav)).astype(int)
    env = np.sqrt((c[b] - c[a]) / np.maximum(b - a, 1))
    return env / max(float(env.max()), 1e-12)


def _onsets(notes: list[Note], fps: float, frames: int) -> np.ndarray:
    """(T,) strength of the note onsets falling in each frame's window: velocity / 127."""
    o = np.zeros(frames)
    for on, _, _, vel in notes:
        k = int(np.floor(on * fps + 0.5))
        if k < frames:
            o[k] = max(o[k], vel / 127)
    return o


@dataclass
class _Motion:
    """How a source moves with its sound, in units of the frame size."""

    pulse: float  # extra scale at full loudness
    jolt: float  # pixels of shift at a full-velocity onset
    bob: float  # pixels lifted at full loudness

    @staticmethod
    def draw(rng: np.random.Generator, size: int) -> _Motion:
        px = size / 224
        return _Motion(rng.uniform(0.06, 0.12), rng.uniform(2, 5) * px, rng.uniform(2, 4) * px)

    def margin(self, w: float, h: float) -> tuple[float, float]:
        """Half-extent of the largest box the motion can make around the centre."""
        s = 1 + self.pulse
        return w * s / 2 + self.jolt + 1, h * s / 2 + self.jolt + self.bob + 1


def _source_boxes(
    centre: tuple[float, float],
    wh: tuple[float, float],
    motion: _Motion,
    env: np.ndarray,
    onsets: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """(T, 4) int boxes: the picture swells with loudness and jolts on each onset."""
    kick = np.zeros_like(onsets)  # onset jolt, decaying over the next frames
    for k in range(len(onsets)):
        kick[k] = max(onsets[k], 0.5 * kick[k - 1] if k else 0.0)
    angle = rng.uniform(0, 2 * np.pi, len(onsets))  # a fresh direction at each onset frame
    for k in range(1, len(onsets)):
        if onsets[k] == 0:
            angle[k] = angle[k - 1]
    scale = 1 + motion.pulse * (0.6 * env + 0.4 * kick)
    cx = centre[0] + motion.jolt * kick * np.cos(angle)
    cy = centre[1] + motion.jolt * kick * np.sin(angle) - motion.bob * env
    return _boxes(cx, cy, wh[0] * scale, wh[1] * scale)


def _boxes(cx: np.ndarray, cy: np.ndarray, w: np.ndarray, h: np.ndarray) -> np.ndarray:
    w = np.maximum(np.round(np.broadcast_to(w, cx.shape)), 2).astype(int)
    h = np.maximum(np.round(np.broadcast_to(h, cx.shape)), 2).astype(int)
    x0 = np.round(cx - w / 2).astype(int)
    y0 = np.round(cy - h / 2).astype(int)
    return np.stack([x0, y0, x0 + w, y0 + h], axis=1)


def _fit(image: Image.Image, long_side: float) -> tuple[float, float]:
    """(w, h) of the picture scaled so that its longer side is `long_side`."""
    f = long_side / max(image.size)
    return image.size[0] * f, image.size[1] * f


def _overlap(a: Sequence[float], b: Sequence[float]) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _place_sources(
    wh: list[tuple[float, float]], motions: list[_Motion], size: int, rng: np.random.Generator
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Centres (and possibly shrunk sizes) whose largest boxes stay in the frame, apart."""
    for attempt in range(400):
        shrink = 0.93 ** (attempt // 40)  # crowded: make both smaller and try again
        sizes = [(w * shrink, h * shrink) for w, h in wh]
        centres, extents = [], []
        for (w, h), m in zip(sizes, motions, strict=True):
            mx, my = m.margin(w, h)
            cx = rng.uniform(mx, max(mx, size - mx))
            cy = rng.uniform(my, max(my, size - my))
            centres.append((cx, cy))
            extents.append((cx - mx - 2, cy - my - 2, cx + mx + 2, cy + my + 2))
        if all(
            _overlap(extents[i], extents[j]) == 0
            for i in range(len(extents))
            for j in range(i + 1, len(extents))
        ):
            return centres, sizes
    raise PixelPlayerError(f"cannot fit {len(wh)} instruments apart in a {size}px frame")


def _distractor_boxes(
    wh: tuple[float, float],
    avoid: list[tuple[float, float, float, float]],
    size: int,
    frames: int,
    fps: float,
    rng: np.random.Generator,
    moves: bool = False,
) -> np.ndarray:
    """(T, 4) boxes of a silent object: a slow drift and sway, blind to the audio; one that
    `moves` also jolts and swells to a rhythm of its own, as a player would."""
    w, h = wh
    best, best_cost = None, np.inf
    for _ in range(40):  # away from the instruments when there is room
        cx, cy = rng.uniform(w / 2, size - w / 2), rng.uniform(h / 2, size - h / 2)
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        cost = sum(_overlap(box, a) for a in avoid)
        if cost < best_cost:
            best, best_cost = (cx, cy), cost
        if cost == 0:
            break
    t = np.arange(frames) / fps
    px = size / 224
    v = rng.normal(0, 0.8, 2) * px  # pixels per second
    amp, period, phase = rng.uniform(0, 2.5) * px, rng.uniform(2, 7), rng.uniform(0, 6.3)
    sway = amp * np.sin(2 * np.pi * t / period + phase)
    cx = np.clip(best[0] + v[0] * t + sway, w / 2, size - w / 2)
    cy = np.clip(best[1] + v[1] * t, h / 2, size - h / 2)
    if not moves:
        return _boxes(cx, cy, np.full(frames, w), np.full(frames, h))
    # onsets of a random rhythm (1-4 a second) and a loudness that decays between them
    onsets = np.where(rng.random(frames) < rng.uniform(1, 4) / fps, rng.uniform(0.3, 1, frames), 0)
    env = np.zeros(frames)
    for k in range(frames):
        env[k] = max(onsets[k], 0.75 * env[k - 1] if k else 0.0)
    jolted = _source_boxes((0.0, 0.0), wh, _Motion.draw(rng, size), env, onsets, rng)
    return jolted + np.round(np.stack([cx, cy, cx, cy], 1)).astype(int)


def _composite(bg: np.ndarray, layers: list[tuple[_Sprite, np.ndarray]]) -> np.ndarray:
    """Draw sprites at their per-frame boxes over the background -> (T, H, W, 3) uint8."""
    frames = len(layers[0][1]) if layers else 1
    size_h, size_w = bg.shape[:2]
    out = np.empty((frames, size_h, size_w, 3), np.uint8)
    buf = np.empty_like(bg)
    for k in range(frames):
        np.copyto(buf, bg)
        for sprite, boxes in layers:
            x0, y0, x1, y1 = (int(v) for v in boxes[k])
            premult, inv_alpha = sprite.at(x1 - x0, y1 - y0)
            # clip to the frame (boxes normally lie inside it)
            fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x1, size_w), min(y1, size_h)
            if fx1 <= fx0 or fy1 <= fy0:
                continue
            sy, sx = slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0)
            region = buf[fy0:fy1, fx0:fx1]
            region *= inv_alpha[sy, sx]
            region += premult[sy, sx]
        np.add(buf, 0.5, out=buf)  # round, not truncate
        out[k] = buf
    return out


def _clip_boxes(boxes: np.ndarray, size: int) -> list[list[int]]:
    return np.clip(boxes, 0, size).tolist()


# --- one clip ------------------------------------------------------------------------------------


@dataclass
class Clip:
    """One rendered clip, in memory."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    stems: list[np.ndarray]  # one (L,) float32 per source; the audio is their sum
    info: dict[str, Any]  # the meta, without file paths

    @property
    def audio(self) -> np.ndarray:
        return np.sum(self.stems, axis=0).astype(np.float32)  # (L,)


def render_clip(
    classes: Sequence[str],
    seed: int,
    seconds: float = 10.0,
    fps: float = 8.0,
    size: int = 224,
    sr: int = 11025,
    soundfont: str | Path | Sequence[str] | None = None,
    images: str | Path | None = None,
    draw_sources: bool = True,
    holdout_pictures: bool = False,
) -> Clip:
    """Render one clip of one (solo) or two (duet) instruments from its clip seed.

    Each source is played by one of the SoundFonts `soundfont` names (default: the training
    ones) and drawn from the training pictures (or the held-out ones, `holdout_pictures`), in
    a pose, colour and light of its own.
    `draw_sources=False` draws the same scene without the instruments (the boxes still say
    where they would be): handy to see what the instruments alone change in a frame.
    """
    fonts = _soundfont_list(soundfont)
    images = str(images) if images is not None else None
    insts = [CLASSES[c] for c in classes]
    n_frames = int(round(seconds * fps))
    # separate streams: the audio of a seed does not depend on the picture settings
    audio_rngs = [np.random.default_rng([seed, 1, i]) for i in range(len(insts))]
    rng = np.random.default_rng([seed, 2])

    stems, parts = [], []
    for inst, arng in zip(insts, audio_rngs, strict=True):
        font = fonts[int(arng.integers(len(fonts)))]
        expression = _expression(inst, arng)
        for _ in range(3):  # a piece that renders silent (a sparse SoundFont): compose again
            notes, bpm = _compose(inst, seconds, arng)
            wav = _render(inst, notes, seconds, sr, font, expression)
            peak = float(np.abs(wav).max())
            if peak > 1e-5 and rms(wav) > SILENCE_RMS * 1e-2:
                break
        else:
            raise PixelPlayerError(f"{font}: class {inst.name} renders silence")
        target = float(arng.uniform(0.3, 0.9))  # loudness varies from clip to clip
        stems.append((wav * (target / peak)).astype(np.float32))
        parts.append((notes, bpm, font, expression))
    mix_peak = float(np.abs(np.sum(stems, axis=0)).max())
    if mix_peak > 0.95:  # a duet's sum must not clip: scale both parts alike
        stems = [(s * (0.95 / mix_peak)).astype(np.float32) for s in stems]

    bg, bg_kind = _background(size, rng)
    labels = [_pick_picture(i.name, images, holdout_pictures, rng) for i in insts]
    poses = [pictures.random_pose(rng, pictures.is_mono(label)) for label in labels]
    images_posed = [pictures.posed(lb, p) for lb, p in zip(labels, poses, strict=True)]
    solo = len(insts) == 1
    lo, hi = (0.38, 0.6) if solo else (0.28, 0.42)
    wh = [_fit(pic, rng.uniform(lo, hi) * size) for pic in images_posed]
    motions = [_Motion.draw(rng, size) for _ in insts]
    centres, wh = _place_sources(wh, motions, size, rng)
    sources, src_layers, avoid, occluders = [], [], [], []
    for i, inst in enumerate(insts):
        env = _frame_envelope(stems[i], sr, fps, n_frames)
        onsets = _onsets(parts[i][0], fps, n_frames)
        boxes = _source_boxes(centres[i], wh[i], motions[i], env, onsets, rng)
        mx, my = motions[i].margin(*wh[i])
        avoid.append(
            (centres[i][0] - mx, centres[i][1] - my, centres[i][0] + mx, centres[i][1] + my)
        )
        src_layers.append((_Sprite(images_posed[i]), boxes))
        if rng.random() < OCCLUDED:
            occluders.append(_occluder(boxes, size, n_frames, rng))
        sources.append(
            {
                "class": inst.name,
                "program": inst.program,
                "bank": inst.bank,
                "percussion": inst.percussion,
                "image": labels[i],
                "picture_source": pictures.source_of(labels[i]),
                "pose": poses[i],
                "soundfont": parts[i][2],
                "expression": parts[i][3],
                "tempo_bpm": round(parts[i][1], 2),
                "peak": round(float(np.abs(stems[i]).max()), 4),
                "boxes": _clip_boxes(boxes, size),
                "notes": [[round(a, 3), round(b, 3), k, v] for a, b, k, v in parts[i][0]],
            }
        )

    distractors, dis_layers = [], []
    names = list(DISTRACTORS)
    user_dis = pictures.image_files(Path(images) / DISTRACTOR_DIR) if images is not None else []
    for _ in range(int(rng.integers(1, 4))):
        if user_dis:
            path = user_dis[int(rng.integers(len(user_dis)))]
            label, name = str(path), path.stem
        else:
            name = names.pop(int(rng.integers(len(names))))
            label = _pick_picture(name, None, False, rng)
        pose = pictures.random_pose(rng, pictures.is_mono(label))
        pic = pictures.posed(label, pose)
        dwh = _fit(pic, rng.uniform(0.14, 0.3) * size)
        moves = bool(rng.random() < MOVING_DISTRACTORS)
        boxes = _distractor_boxes(dwh, avoid, size, n_frames, fps, rng, moves)
        avoid.append((*boxes[:, :2].min(0), *boxes[:, 2:].max(0)))  # the next one goes elsewhere
        dis_layers.append((_Sprite(pic), boxes))
        distractors.append(
            {
                "name": name,
                "image": label,
                "picture_source": pictures.source_of(label),
                "pose": pose,
                "silent": True,
                "moves": moves,
                "boxes": _clip_boxes(boxes, size),
            }
        )

    # distractors behind the instruments; occluders (a stand, a hand, a sheet) in front
    layers = dis_layers + (src_layers if draw_sources else []) + [o[0] for o in occluders]
    frames = _composite(bg, layers)
    info = {
        "kind": "solo" if solo else "duet",
        "classes": [i.name for i in insts],
        "programs": [i.program for i in insts],
        "sr": sr,
        "fps": fps,
        "size": size,
        "seconds": seconds,
        "duration": seconds,
        "num_frames": n_frames,
        "num_samples": int(len(stems[0])),
        "seed": int(seed),
        "background": bg_kind,
        "sources": sources,
        "distractors": distractors,
        "occluders": [o[1] for o in occluders],
    }
    return Clip(frames, stems, info)


OCCLUDED = 0.3  # share of instruments partly hidden by something in front
MOVING_DISTRACTORS = 0.4  # share of silent objects that jolt and swell as players do


def _occluder(
    boxes: np.ndarray, size: int, frames: int, rng: np.random.Generator
) -> tuple[tuple[_Sprite, np.ndarray], list[int]]:
    """A plain shape in front of one side of an instrument, hiding 15-35 % of its box:
    ((sprite, (T, 4) boxes), its box)."""
    x0, y0, x1, y1 = boxes.mean(0)
    w, h = x1 - x0, y1 - y0
    part = rng.uniform(0.15, 0.35)
    side = int(rng.integers(4))
    if side == 0:
        box = (x0 - 0.1 * w, y1 - part * h, x1 + 0.1 * w, y1 + 0.1 * h)  # from below
    elif side == 1:
        box = (x0 - 0.1 * w, y0 - 0.1 * h, x1 + 0.1 * w, y0 + part * h)  # from above
    elif side == 2:
        box = (x0 - 0.1 * w, y0 - 0.1 * h, x0 + part * w, y1 + 0.1 * h)  # from the left
    else:
        box = (x1 - part * w, y0 - 0.1 * h, x1 + 0.1 * w, y1 + 0.1 * h)  # from the right
    bx = [int(round(min(max(v, 0), size))) for v in box]
    bx[2], bx[3] = max(bx[2], bx[0] + 2), max(bx[3], bx[1] + 2)
    im = Image.new("RGBA", (bx[2] - bx[0], bx[3] - bx[1]), (0, 0, 0, 0))
    fill = (*[int(c) for c in _colour(rng)], 255)
    if rng.random() < 0.5:
        ImageDraw.Draw(im).rectangle((0, 0, im.width - 1, im.height - 1), fill=fill)
    else:
        ImageDraw.Draw(im).ellipse((0, 0, im.width - 1, im.height - 1), fill=fill)
    return (_Sprite(im), np.tile(np.array(bx), (frames, 1))), bx


# --- the dataset ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    id: str
    classes: tuple[str, ...]
    seed: int  # the clip seed
    out: str
    settings: dict[str, Any]  # seconds, fps, size, sr, soundfont, images, dataset_seed

    @property
    def video(self) -> str:
        folder = f"videos/{self.classes[0]}" if len(self.classes) == 1 else "duets"
        return f"{folder}/{self.id}.mp4"

    @property
    def stems(self) -> list[str]:
        if len(self.classes) == 1:
            return [f"stems/{self.id}.wav"]
        return [f"stems/{self.id}_{i}.wav" for i in range(len(self.classes))]

    @property
    def meta(self) -> str:
        return f"meta/{self.id}.json"


def _clip_seed(*key: int) -> int:
    return int(np.random.SeedSequence(list(key)).generate_state(1)[0])


def _jobs(
    out: Path,
    classes: list[str],
    clips_per_class: int,
    duets: int,
    same_class: bool,
    seed: int,
    settings: dict[str, Any],
) -> list[_Job]:
    # a held-out set draws other seeds: its clips never replay a training clip's notes
    held = (1 + HOLDOUT_KINDS.index(settings["holdout"]),) if settings["holdout"] else ()
    jobs = []
    for index in range(clips_per_class):  # interleaved, so a partial run covers every class
        for name in classes:
            s = _clip_seed(seed, 0, zlib.crc32(name.encode()), index, *held)
            jobs.append(_Job(f"{name}_{index:04d}", (name,), s, str(out), settings))
    for index in range(duets):
        rng = np.random.default_rng([seed, 1, index])
        if same_class:
            pair = (classes[int(rng.integers(len(classes)))],) * 2
        else:
            a, b = rng.choice(len(classes), 2, replace=False)
            pair = (classes[int(a)], classes[int(b)])
        job_seed = _clip_seed(seed, 1, index, *held)
        jobs.append(_Job(f"duet_{index:04d}", pair, job_seed, str(out), settings))
    return jobs


def _done(job: _Job) -> dict[str, Any] | None:
    """The meta of a clip an earlier run finished with the same settings, else None."""
    out = Path(job.out)
    try:
        meta = json.loads((out / job.meta).read_text())
    except (OSError, ValueError):
        return None
    same = (
        meta.get("seed") == job.seed
        and meta.get("classes") == list(job.classes)
        and all(meta.get(k) == v for k, v in job.settings.items())
    )
    files = [job.video, *job.stems]
    return meta if same and all((out / f).is_file() for f in files) else None


def _make_clip(job: _Job) -> dict[str, Any]:
    """Render and write one clip; module-level so a spawned worker can run it."""
    s = job.settings
    try:
        clip = render_clip(
            job.classes, job.seed, s["seconds"], s["fps"], s["size"], s["sr"],
            s["soundfont"], s["images"], holdout_pictures=s["holdout"] in ("pictures", "both"),
        )  # fmt: skip
        out = Path(job.out)
        for rel, stem in zip(job.stems, clip.stems, strict=True):
            save_audio(out / rel, stem, s["sr"])
        write_video(out / job.video, clip.frames, s["fps"], clip.audio, s["sr"])
    except PixelPlayerError as exc:
        raise PixelPlayerError(str(exc)) from None  # a plain one pickles back from a worker
    meta: dict[str, Any] = {"id": job.id}
    if len(job.classes) == 1:
        meta["class"] = job.classes[0]
        meta["program"] = clip.info["programs"][0]
    meta.update(clip.info)
    meta.update(video=job.video, stems=list(job.stems), **s)
    for source, stem in zip(meta["sources"], job.stems, strict=True):
        source["stem"] = stem
    _write_json(out / job.meta, meta)  # last: a meta file means the clip is complete
    return meta


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    """One top-level key per line, values compact: per-frame boxes stay readable in size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in obj.items()]
    tmp = path.with_name(path.name + ".part")
    tmp.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    tmp.replace(path)


def _init_worker(soundfonts: list[str]) -> None:
    try:
        for font in soundfonts:
            _soundfont(font)  # load the SoundFonts once, before the first clip
    except PixelPlayerError:
        pass  # the first clip raises it again; a failing initializer would respawn forever


def _check(
    classes: Sequence[str] | None,
    seconds: float,
    fps: float,
    size: int,
    sr: int,
    clips_per_class: int,
    duets: int,
    same_class: bool,
    seed: int,
    soundfonts: list[Path],
    images: Path | None,
    holdout: str | None,
) -> list[str]:
    """Validate the settings before any work; returns the class list."""
    if holdout is not None and holdout not in HOLDOUT_KINDS:
        raise PixelPlayerError(f"--holdout {holdout}: give one of {', '.join(HOLDOUT_KINDS)}")
    held_pictures = holdout in ("pictures", "both")
    if held_pictures and images is not None:
        raise PixelPlayerError("--holdout pictures draws the held-out pictures: drop --images")
    if classes is None:
        names = list(CLASSES)
        if held_pictures:  # only the classes the held-out pictures show
            names = [c for c in names if pictures.holdout_pictures(c)]
    else:
        names = list(dict.fromkeys(c.strip() for c in classes if c.strip()))
        unknown = [c for c in names if c not in CLASSES]
        if unknown or not names:
            raise PixelPlayerError(
                f"unknown class {', '.join(unknown) or '(none given)'}; "
                f"valid classes: {', '.join(CLASSES)}"
            )
        missing = [c for c in names if held_pictures and not pictures.holdout_pictures(c)]
        if missing:
            raise PixelPlayerError(
                f"no held-out picture of {', '.join(missing)}; the held-out pictures show "
                + ", ".join(c for c in CLASSES if c in pictures.HOLDOUT_PICTURES)
            )
    for font in soundfonts:
        if not font.is_file():
            package = TRAINING_SOUNDFONTS.get(str(font))
            if font == HOLDOUT_SOUNDFONT:
                package = HOLDOUT_SOUNDFONT_PACKAGE
            hint = f" (apt-get install {package}, or give --soundfont PATH)" if package else ""
            raise PixelPlayerError(f"{font}: no such SoundFont{hint}")
        with open(font, "rb") as f:
            head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
            raise PixelPlayerError(f"{font}: not a SoundFont 2 file (.sf2 or .sf3)")
    checks.number("--size", size, 32, 4096, integer=True)
    if size % 2:
        raise PixelPlayerError(f"--size {size}: give an even number of pixels, at least 32")
    checks.number("--sr", sr, 8000, 96000, integer=True)
    checks.number("--fps", fps, 0, 240, above=True)
    checks.number("--seconds", seconds, 0, 3600, above=True)  # an hour: a clip, not a film
    if seconds * fps < 1:
        raise PixelPlayerError("--seconds and --fps must give at least one frame")
    checks.number("--clips", clips_per_class, 0, 100_000, integer=True)
    checks.number("--duets", duets, 0, 100_000, integer=True)
    checks.number("--seed", seed, 0, 2**32 - 1, integer=True)
    if duets and len(names) < 2 and not same_class:
        raise PixelPlayerError("duets of different classes need two classes; or use --same-class")
    if images is not None:
        if not images.is_dir():
            raise PixelPlayerError(f"{images}: no such folder of pictures")
        empty = [c for c in names if not pictures.image_files(images / c)]
        if empty:
            raise PixelPlayerError(
                f"{images}: no picture (.png/.jpg) for class {', '.join(empty)}; "
                f"put them in {images}/<class>/"
            )
        for c in names:
            for path in pictures.image_files(images / c):
                pictures.picture(str(path))  # an unreadable picture fails now, not in a worker
    needed = [] if images is not None else list(names)
    if images is None or not pictures.image_files(images / DISTRACTOR_DIR):
        needed += list(DISTRACTORS)
    for name in needed:  # a class or object with no installed picture fails before any work
        held = held_pictures and name in CLASSES
        if not (pictures.holdout_pictures(name) if held else pictures.training_pictures(name)):
            raise PixelPlayerError(f"no picture of {name} is installed (run scripts/setup.sh)")
    return names


def synthesize(
    out_dir: str | Path,
    classes: Sequence[str] | None = None,
    clips_per_class: int = 40,
    seconds: float = 10.0,
    fps: float = 8,
    size: int = 224,
    sr: int = 11025,
    duets: int = 0,
    same_class: bool = False,
    seed: int = 0,
    soundfont: str | Path | Sequence[str] | None = None,
    images: str | Path | None = None,
    workers: int | None = None,
    progress: bool = True,
    holdout: str | None = None,
) -> list[dict[str, Any]]:
    """Make the dataset in `out_dir` and return the metas of all its clips (solos, then duets).

    `holdout` makes test clips of what training never uses: "pictures" (the held-out
    pictures), "sounds" (the held-out SoundFont) or "both". Clips already made by an earlier
    run with the same settings are kept, not made again.
    """
    return _synthesize(**locals())[0]


def _synthesize(**kw: Any) -> tuple[list[dict[str, Any]], int]:
    """`synthesize`, also returning how many clips were made (not found done)."""
    from tqdm import tqdm

    out = Path(kw["out_dir"])
    holdout = kw["holdout"]
    fonts = _soundfont_list(kw["soundfont"])
    if holdout in ("sounds", "both"):
        if kw["soundfont"] is not None:
            raise PixelPlayerError(
                "--holdout sounds plays the held-out SoundFont: drop --soundfont"
            )
        fonts = [str(HOLDOUT_SOUNDFONT)]
    soundfonts = [Path(f).expanduser() for f in fonts]
    images = Path(kw["images"]).expanduser() if kw["images"] is not None else None
    seconds, fps = float(kw["seconds"]), float(kw["fps"])
    fps = int(fps) if fps.is_integer() else fps
    size, sr, seed = int(kw["size"]), int(kw["sr"]), int(kw["seed"])
    names = _check(
        kw["classes"], seconds, fps, size, sr, kw["clips_per_class"], kw["duets"],
        kw["same_class"], seed, soundfonts, images, holdout,
    )  # fmt: skip
    settings = {
        "seconds": seconds,
        "fps": fps,
        "size": size,
        "sr": sr,
        "soundfont": [str(f.absolute()) for f in soundfonts],
        "images": str(images.resolve()) if images is not None else None,
        "dataset_seed": seed,
        "holdout": holdout,
    }
    jobs = _jobs(out, names, kw["clips_per_class"], kw["duets"], kw["same_class"], seed, settings)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(
        out / "synth.json",
        {
            **settings,
            "clips_per_class": kw["clips_per_class"],
            "duets": kw["duets"],
            "same_class": kw["same_class"],
            "classes": {
                c: {
                    "program": CLASSES[c].program,
                    "bank": CLASSES[c].bank,
                    "pictures": (
                        pictures.holdout_pictures(c)
                        if holdout in ("pictures", "both")
                        else pictures.training_pictures(c)
                    ),
                    "range": [CLASSES[c].low, CLASSES[c].high],
                }
                for c in names
            },
        },
    )
    metas: dict[str, dict[str, Any]] = {}
    pending = []
    for job in jobs:
        meta = _done(job)
        if meta is None:
            pending.append(job)
        else:
            metas[job.id] = meta
    workers = worker_count(kw["workers"], len(pending))
    init = (settings["soundfont"],)
    with tqdm(total=len(jobs), initial=len(metas), unit="clip", disable=not kw["progress"]) as bar:
        for meta in imap_unordered(_make_clip, pending, workers, _init_worker, init):
            metas[meta["id"]] = meta
            bar.update()
    return [metas[job.id] for job in jobs], len(pending)


# --- command line --------------------------------------------------------------------------------


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth",
        help="make a MUSIC-like dataset of solo instrument videos",
        description=(
            "Make a MUSIC-like dataset: solo videos of instruments playing random melodies, "
            "rendered with FluidSynth from one of three General MIDI SoundFonts with vibrato and "
            "reverberation at random, drawn from a library of pictures (emoji of six makers, "
            "icons; or yours with --images) in random poses, colours and light, partly hidden at "
            "times, on textured backgrounds among silent objects, some of which move too. The "
            "instrument moves with its own notes. Writes OUT/videos/<class>/<id>.mp4, lossless "
            "stems in OUT/stems, and OUT/meta/<id>.json with per-frame boxes and where each "
            "picture and sound came from; duets go to OUT/duets. --holdout makes test clips of "
            "the pictures and sounds training never uses. A second run with the same settings "
            "keeps the clips already made."
        ),
    )
    p.add_argument("out", metavar="OUT", help="output folder")
    p.add_argument(
        "--clips",
        type=int,
        default=40,
        metavar="N",
        help=f"solo clips per class (default 40: {40 * len(CLASSES)} clips)",
    )
    p.add_argument(
        "--seconds", type=float, default=10.0, metavar="S", help="clip length (default 10)"
    )
    p.add_argument(
        "--classes",
        metavar="A,B,...",
        help=f"comma-separated subset of the classes (default all: {', '.join(CLASSES)})",
    )
    p.add_argument("--seed", type=int, default=0, metavar="N", help="dataset seed (default 0)")
    p.add_argument("--fps", type=float, default=8, metavar="F", help="video frame rate (default 8)")
    p.add_argument(
        "--size", type=int, default=224, metavar="PX", help="frame width = height, even (224)"
    )
    p.add_argument(
        "--sr", type=int, default=11025, metavar="HZ", help="audio sample rate (default 11025)"
    )
    p.add_argument(
        "--duets",
        type=int,
        default=0,
        metavar="N",
        help="also make N duet videos of two instruments, with both parts as stems (default 0)",
    )
    p.add_argument(
        "--same-class",
        action="store_true",
        help="duets of two players of one class (two different melodies)",
    )
    p.add_argument(
        "--soundfont",
        metavar="PATH",
        help=(
            "General MIDI SoundFont (.sf2/.sf3) to render with, or several separated by commas "
            f"(default: the training ones, {', '.join(TRAINING_SOUNDFONTS)})"
        ),
    )
    p.add_argument(
        "--holdout",
        choices=HOLDOUT_KINDS,
        help=(
            "make held-out test clips, never used in training: 'pictures' draws the photo "
            f"cut-outs of Debian's {pictures.HOLDOUT_PACKAGE} (only the classes it shows), "
            f"'sounds' plays {HOLDOUT_SOUNDFONT} ({HOLDOUT_SOUNDFONT_PACKAGE}), 'both' both; "
            "installs nothing: a missing package is an error naming it"
        ),
    )
    p.add_argument(
        "--images",
        metavar="DIR",
        help=(
            "your pictures: DIR/<class>/*.png|jpg, cut-outs with alpha or photos (drawn as "
            f"rectangles); optional DIR/{DISTRACTOR_DIR}/ for the silent objects"
        ),
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="parallel processes (default: CPU count)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    classes = args.classes.split(",") if args.classes else None
    metas, made = _synthesize(
        out_dir=args.out,
        classes=classes,
        clips_per_class=args.clips,
        seconds=args.seconds,
        fps=args.fps,
        size=args.size,
        sr=args.sr,
        duets=args.duets,
        same_class=args.same_class,
        seed=args.seed,
        soundfont=args.soundfont.split(",") if args.soundfont else None,
        images=args.images,
        workers=args.workers,
        progress=True,
        holdout=args.holdout,
    )
    n_duets = sum(m["kind"] == "duet" for m in metas)
    kept = f", {len(metas) - made} already there" if made < len(metas) else ""
    print(
        f"made {made} clips ({len(metas) - n_duets} solo, {n_duets} duets in all{kept}) "
        f"in {time.perf_counter() - start:.1f} s -> {args.out}"
    )
    return 0
