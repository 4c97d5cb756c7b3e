"""SoundFonts and FluidSynth: which fonts play the world, and notes rendered offline to audio.

Each part of a clip is played by one General MIDI SoundFont drawn from the training ones (or
the held-out one, `data synth --holdout sounds|both`), with an expression of its own: vibrato,
brightness and the room's reverberation.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixelplayer.audio import resample
from pixelplayer.data.synth.compose import Note
from pixelplayer.data.synth.instruments import Instrument
from pixelplayer.errors import PixelPlayerError

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
MIN_RENDER_SR = 22050  # render at least this fast, then resample: less aliasing at 11025 Hz

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


def soundfont_list(soundfont: str | Path | Sequence[str] | None) -> list[str]:
    """The fonts a clip may be played by: those given, or the training ones (None)."""
    if soundfont is None:
        return list(TRAINING_SOUNDFONTS)
    if isinstance(soundfont, (str, Path)):
        return [str(soundfont)]
    return [str(f) for f in soundfont]


def run_soundfonts(soundfont: str | Path | Sequence[str] | None, held_out: bool) -> list[Path]:
    """The fonts of a whole run: those given, the training ones, or the held-out one."""
    fonts = soundfont_list(soundfont)
    if held_out:
        if soundfont is not None:
            raise PixelPlayerError(
                "--holdout sounds plays the held-out SoundFont: drop --soundfont"
            )
        fonts = [str(HOLDOUT_SOUNDFONT)]
    return [Path(f).expanduser() for f in fonts]


def check_soundfonts(fonts: Sequence[Path]) -> None:
    """Each font a SoundFont 2 file, or an error naming the package that installs it."""
    for font in fonts:
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


def load_soundfont(path: str) -> Any:
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


def draw_expression(inst: Instrument, rng: np.random.Generator) -> dict[str, float]:
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


def render_notes(
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
    sfont = load_soundfont(soundfont)
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
