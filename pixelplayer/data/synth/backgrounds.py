"""Backdrops of the generated world: plain, patterned and textured (wood, marble, fabric,
bricks), in random colours, drawn once per clip."""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image

BACKGROUNDS = (
    *("solid", "gradient", "noise", "stripes", "checker", "room"),
    *("wood", "marble", "fabric", "bricks"),  # textures
)


def random_colour(rng: np.random.Generator) -> np.ndarray:
    """(3,) float32 RGB in [0, 255], rarely loud: backdrops and occluders, not the players."""
    h, s, v = rng.uniform(0, 1), rng.uniform(0.05, 0.65), rng.uniform(0.25, 0.95)
    return np.array(colorsys.hsv_to_rgb(h, s, v), np.float32) * 255


def background(size: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A random backdrop (H, W, 3) float32 in [0, 255] and its kind; drawn once per clip."""
    kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size  # (H, W) in [0, 1)
    c0, c1 = random_colour(rng), random_colour(rng)
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
