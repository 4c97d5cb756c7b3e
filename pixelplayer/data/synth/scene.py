"""Staging a scene: pictures as sprites, how they move (with their sound, or on their own),
where they stand, what hides them, and the frames drawn from it all.

A box is (x0, y0, x1, y1) in pixels; per-frame boxes are (T, 4) int arrays.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from pixelplayer.data import pictures
from pixelplayer.data.synth.backgrounds import random_colour
from pixelplayer.data.synth.compose import Note
from pixelplayer.errors import PixelPlayerError


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


class Sprite:
    """A picture drawn at several sizes: premultiplied RGB and 1 - alpha, cached per size."""

    def __init__(self, image: Image.Image) -> None:
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


def frame_envelope(wav: np.ndarray, sr: int, fps: float, frames: int) -> np.ndarray:
    """RMS of the audio around each frame's time k / fps -> (T,) normalised to max 1."""
    c = np.concatenate([[0.0], np.cumsum(np.square(wav, dtype=np.float64))])
    t = np.arange(frames) / fps
    a = np.clip(np.round((t - 0.5 / fps) * sr), 0, len(wav)).astype(int)
    b = np.clip(np.round((t + 0.5 / fps) * sr), 0, len(wav)).astype(int)
    env = np.sqrt((c[b] - c[a]) / np.maximum(b - a, 1))
    return env / max(float(env.max()), 1e-12)


def onset_strengths(notes: list[Note], fps: float, frames: int) -> np.ndarray:
    """(T,) strength of the note onsets falling in each frame's window: velocity / 127."""
    o = np.zeros(frames)
    for on, _, _, vel in notes:
        k = int(np.floor(on * fps + 0.5))
        if k < frames:
            o[k] = max(o[k], vel / 127)
    return o


@dataclass
class Motion:
    """How a source moves with its sound, in units of the frame size."""

    pulse: float  # extra scale at full loudness
    jolt: float  # pixels of shift at a full-velocity onset
    bob: float  # pixels lifted at full loudness

    @staticmethod
    def draw(rng: np.random.Generator, size: int) -> Motion:
        px = size / 224
        return Motion(rng.uniform(0.06, 0.12), rng.uniform(2, 5) * px, rng.uniform(2, 4) * px)

    def margin(self, w: float, h: float) -> tuple[float, float]:
        """Half-extent of the largest box the motion can make around the centre."""
        s = 1 + self.pulse
        return w * s / 2 + self.jolt + 1, h * s / 2 + self.jolt + self.bob + 1


def source_boxes(
    centre: tuple[float, float],
    wh: tuple[float, float],
    motion: Motion,
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


def fit_size(image: Image.Image, long_side: float) -> tuple[float, float]:
    """(w, h) of the picture scaled so that its longer side is `long_side`."""
    f = long_side / max(image.size)
    return image.size[0] * f, image.size[1] * f


def _overlap(a: Sequence[float], b: Sequence[float]) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def place_sources(
    wh: list[tuple[float, float]], motions: list[Motion], size: int, rng: np.random.Generator
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


def distractor_boxes(
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
    jolted = source_boxes((0.0, 0.0), wh, Motion.draw(rng, size), env, onsets, rng)
    return jolted + np.round(np.stack([cx, cy, cx, cy], 1)).astype(int)


def composite(bg: np.ndarray, layers: list[tuple[Sprite, np.ndarray]]) -> np.ndarray:
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


def occluder(
    boxes: np.ndarray, size: int, frames: int, rng: np.random.Generator
) -> tuple[tuple[Sprite, np.ndarray], list[int]]:
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
    fill = (*[int(c) for c in random_colour(rng)], 255)
    if rng.random() < 0.5:
        ImageDraw.Draw(im).rectangle((0, 0, im.width - 1, im.height - 1), fill=fill)
    else:
        ImageDraw.Draw(im).ellipse((0, 0, im.width - 1, im.height - 1), fill=fill)
    return (Sprite(im), np.tile(np.array(bx), (frames, 1))), bx
