"""Random pieces for an instrument to play: phrases of notes in a scale, or drum grooves.

A piece is a list of `Note`s in seconds; compose.py knows nothing of sound or pictures.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pixelplayer.data.synth.instruments import Instrument

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

Note = tuple[float, float, int, int]  # (onset s, offset s, MIDI key, velocity)


def compose(inst: Instrument, seconds: float, rng: np.random.Generator) -> tuple[list[Note], float]:
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
