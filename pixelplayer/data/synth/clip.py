"""One clip of the generated world, in memory: its parts played and rendered, its scene drawn.

`render_clip` depends only on its arguments: the clip seed gives separate random streams for
the audio of each part and for the picture, so the audio of a seed does not depend on the
picture settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from pixelplayer.audio import SILENCE_RMS, rms
from pixelplayer.data import pictures
from pixelplayer.data.synth.backgrounds import background
from pixelplayer.data.synth.compose import Note, compose
from pixelplayer.data.synth.instruments import CLASSES, Instrument
from pixelplayer.data.synth.scene import (
    Motion,
    Sprite,
    composite,
    distractor_boxes,
    fit_size,
    frame_envelope,
    occluder,
    onset_strengths,
    place_sources,
    source_boxes,
)
from pixelplayer.data.synth.soundfont import draw_expression, render_notes, soundfont_list
from pixelplayer.errors import PixelPlayerError

# Silent objects: everyday things that make no sound (no clocks, phones or speakers)
DISTRACTORS = tuple(pictures.DISTRACTOR_ICONS)  # their pictures: pictures.py
DISTRACTOR_DIR = "_distractors"  # optional IMAGES/_distractors/*.png replaces the emoji ones
OCCLUDED = 0.3  # share of instruments partly hidden by something in front
MOVING_DISTRACTORS = 0.4  # share of silent objects that jolt and swell as players do
# at least this share of a class's clips show its GCompris drawing, when it has one: the only
# training pictures shaded as the instrument itself is, the nearest to footage (drawn as one of
# ten pictures, it would show in a tenth of the violin's clips). 2/3 scored 0.6 and 2.2 dB
# higher than 1/3 on held-out pictures and on both held out (docs/generalization.md)
SHADED_SHARE = 2 / 3


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
    shaded = [x for x in labels if x.startswith(pictures.GCOMPRIS_PREFIX)]
    if shaded and rng.random() < SHADED_SHARE:
        return shaded[int(rng.integers(len(shaded)))]
    return labels[int(rng.integers(len(labels)))]


def _clip_boxes(boxes: np.ndarray, size: int) -> list[list[int]]:
    """(T, 4) boxes as a meta file holds them: clipped to the frame."""
    return np.clip(boxes, 0, size).tolist()


@dataclass
class Clip:
    """One rendered clip, in memory."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    stems: list[np.ndarray]  # one (L,) float32 per source; the audio is their sum
    info: dict[str, Any]  # the meta, without file paths

    @property
    def audio(self) -> np.ndarray:
        return np.sum(self.stems, axis=0).astype(np.float32)  # (L,)


class _Part(NamedTuple):
    """What one source plays: its notes, tempo, SoundFont and expression."""

    notes: list[Note]
    bpm: float
    font: str
    expression: dict[str, float]


def _play(
    insts: Sequence[Instrument], seed: int, seconds: float, sr: int, fonts: Sequence[str]
) -> tuple[list[np.ndarray], list[_Part]]:
    """Compose and render each part of a clip -> (one (L,) float32 stem per part, the parts).

    Each part draws from its own stream of the clip seed, so its audio does not depend on the
    picture settings nor on the other part.
    """
    stems, parts = [], []
    for i, inst in enumerate(insts):
        arng = np.random.default_rng([seed, 1, i])
        font = fonts[int(arng.integers(len(fonts)))]
        expression = draw_expression(inst, arng)
        for _ in range(3):  # a piece that renders silent (a sparse SoundFont): compose again
            notes, bpm = compose(inst, seconds, arng)
            wav = render_notes(inst, notes, seconds, sr, font, expression)
            peak = float(np.abs(wav).max())
            if peak > 1e-5 and rms(wav) > SILENCE_RMS * 1e-2:
                break
        else:
            raise PixelPlayerError(f"{font}: class {inst.name} renders silence")
        target = float(arng.uniform(0.3, 0.9))  # loudness varies from clip to clip
        stems.append((wav * (target / peak)).astype(np.float32))
        parts.append(_Part(notes, bpm, font, expression))
    mix_peak = float(np.abs(np.sum(stems, axis=0)).max())
    if mix_peak > 0.95:  # a duet's sum must not clip: scale both parts alike
        stems = [(s * (0.95 / mix_peak)).astype(np.float32) for s in stems]
    return stems, parts


KINDS = {1: "solo", 2: "duet", 3: "trio"}  # the meta's "kind", by number of instruments


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
    """Render one clip of one (solo), two (duet) or three (trio) instruments from its clip seed.

    Each source is played by one of the SoundFonts `soundfont` names (default: the training
    ones) and drawn from the training pictures (or the held-out ones, `holdout_pictures`), in
    a pose, colour and light of its own.
    `draw_sources=False` draws the same scene without the instruments (the boxes still say
    where they would be): handy to see what the instruments alone change in a frame.
    """
    images = str(images) if images is not None else None
    insts = [CLASSES[c] for c in classes]
    n_frames = int(round(seconds * fps))
    stems, parts = _play(insts, seed, seconds, sr, soundfont_list(soundfont))
    rng = np.random.default_rng([seed, 2])  # the picture's stream
    envs = [frame_envelope(stem, sr, fps, n_frames) for stem in stems]
    onsets = [onset_strengths(part.notes, fps, n_frames) for part in parts]
    scene = stage(insts, envs, onsets, size, fps, rng, images, holdout_pictures, draw_sources)
    sources = [
        {
            "class": inst.name,
            "program": inst.program,
            "bank": inst.bank,
            "percussion": inst.percussion,
            **{k: look[k] for k in ("image", "picture_source", "pose")},
            "soundfont": part.font,
            "expression": part.expression,
            "tempo_bpm": round(part.bpm, 2),
            "peak": round(float(np.abs(stem).max()), 4),
            "boxes": look["boxes"],
            "notes": [[round(a, 3), round(b, 3), k, v] for a, b, k, v in part.notes],
        }
        for inst, part, stem, look in zip(insts, parts, stems, scene.sources, strict=True)
    ]
    info = {
        "kind": KINDS[len(insts)],
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
        "background": scene.background,
        "sources": sources,
        "distractors": scene.distractors,
        "occluders": scene.occluders,
    }
    return Clip(scene.frames, stems, info)


class Scene(NamedTuple):
    """A staged scene: its frames and, per source, silent object and occluder, what it shows."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    sources: list[dict[str, Any]]  # per instrument: image, picture_source, pose, boxes
    distractors: list[dict[str, Any]]
    occluders: list[list[int]]  # their boxes
    background: str  # its kind


def stage(
    insts: Sequence[Instrument],
    envs: Sequence[np.ndarray],
    onsets: Sequence[np.ndarray],
    size: int,
    fps: float,
    rng: np.random.Generator,
    images: str | None = None,
    holdout_pictures: bool = False,
    draw_sources: bool = True,
) -> Scene:
    """Draw the scene of instruments that swell with their loudness `envs` and jolt on their
    `onsets` ((T,) each), among 1-3 silent objects, over a background."""
    n_frames = len(envs[0])
    bg, bg_kind = background(size, rng)
    labels = [_pick_picture(i.name, images, holdout_pictures, rng) for i in insts]
    poses = [pictures.random_pose(rng, pictures.is_mono(label)) for label in labels]
    images_posed = [pictures.posed(lb, p) for lb, p in zip(labels, poses, strict=True)]
    lo, hi = {1: (0.38, 0.6), 2: (0.28, 0.42)}.get(len(insts), (0.22, 0.34))  # of the frame
    wh = [fit_size(pic, rng.uniform(lo, hi) * size) for pic in images_posed]
    motions = [Motion.draw(rng, size) for _ in insts]
    centres, wh = place_sources(wh, motions, size, rng)
    sources, src_layers, avoid, occluders = [], [], [], []
    for i in range(len(insts)):
        boxes = source_boxes(centres[i], wh[i], motions[i], envs[i], onsets[i], rng)
        mx, my = motions[i].margin(*wh[i])
        avoid.append(
            (centres[i][0] - mx, centres[i][1] - my, centres[i][0] + mx, centres[i][1] + my)
        )
        src_layers.append((Sprite(images_posed[i]), boxes))
        if rng.random() < OCCLUDED:
            occluders.append(occluder(boxes, size, n_frames, rng))
        sources.append(
            {
                "image": labels[i],
                "picture_source": pictures.source_of(labels[i]),
                "pose": poses[i],
                "boxes": _clip_boxes(boxes, size),
            }
        )
    distractors, dis_layers = _distractors(images, avoid, size, n_frames, fps, rng)
    # distractors behind the instruments; occluders (a stand, a hand, a sheet) in front
    layers = dis_layers + (src_layers if draw_sources else []) + [o[0] for o in occluders]
    frames = composite(bg, layers)
    return Scene(frames, sources, distractors, [o[1] for o in occluders], bg_kind)


def _distractors(
    images: str | None,
    avoid: list[tuple[float, float, float, float]],
    size: int,
    frames: int,
    fps: float,
    rng: np.random.Generator,
) -> tuple[list[dict[str, Any]], list[tuple[Sprite, np.ndarray]]]:
    """1-3 silent objects away from the boxes in `avoid` (extended with theirs): (their metas,
    their layers)."""
    distractors, layers = [], []
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
        dwh = fit_size(pic, rng.uniform(0.14, 0.3) * size)
        moves = bool(rng.random() < MOVING_DISTRACTORS)
        boxes = distractor_boxes(dwh, avoid, size, frames, fps, rng, moves)
        avoid.append((*boxes[:, :2].min(0), *boxes[:, 2:].max(0)))  # the next one goes elsewhere
        layers.append((Sprite(pic), boxes))
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
    return distractors, layers
