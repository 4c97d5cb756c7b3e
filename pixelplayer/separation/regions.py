"""Regions of the feature grid: the cells that sound grouped into sources, and the cells under
pixels, boxes and a lattice over the frame.

The frame net is fully convolutional, so a frame of H x W pixels has a feature grid of
(h, w) = (H/16, W/16) cells; pixels of the original frame map onto it by proportion.
Sources: the cells that sound (Otsu on log energy) grouped by k-means on their visual
features; a source's sound is the mixture masked by its cells' features max-pooled.
"""

from __future__ import annotations

import warnings

import numpy as np

from pixelplayer.errors import PixelPlayerError
from pixelplayer.video import MediaInfo

MAX_AUTO_SOURCES = 4
SILHOUETTE_MIN = 0.25  # below: "no substantial structure" (Kaufman & Rousseeuw) -> one source
MIN_DECADES = 1.0  # Otsu classes closer than 10 dB in mean energy: no silent group, all sound


# --- grouping cells into sources --------------------------------------------------------------


def otsu_threshold(values: np.ndarray) -> tuple[float, float]:
    """Otsu's split of a sample, exact on the sorted values -> (threshold, gap of class means).

    The threshold lies halfway between the two values where the between-class variance is
    largest; values >= it form the upper class. A constant sample gives (its value, 0).
    """
    v = np.sort(np.asarray(values, np.float64).ravel())
    n = len(v)
    if n < 2 or v[0] == v[-1]:
        return float(v[0]), 0.0
    csum = np.cumsum(v)
    k = np.arange(1, n)  # the lower class holds the first k values
    low = csum[:-1] / k
    high = (csum[-1] - csum[:-1]) / (n - k)
    between = (k / n) * (1 - k / n) * (high - low) ** 2
    between[v[1:] == v[:-1]] = -1.0  # split only between distinct values
    i = int(np.argmax(between))
    return float((v[i] + v[i + 1]) / 2), float(high[i] - low[i])


def sounding_cells(energy: np.ndarray) -> tuple[np.ndarray, float]:
    """Mean energy per cell (h, w) -> (bool mask of the cells that sound, energy threshold).

    Otsu on log10 energy: a silent cell's mask is near zero, so silent and sounding cells lie
    decades apart and the log sample is bimodal. When Otsu's two classes are less than a decade
    apart there is no silent group (e.g. everything plays), and every cell counts as sounding.
    """
    log = np.log10(np.maximum(energy, 1e-20))
    thr, gap = otsu_threshold(log)
    if gap < MIN_DECADES:
        thr = float(log.min())
    return log >= thr, float(10.0**thr)


def _distinct(x: np.ndarray) -> int:
    return len(np.unique(np.round(x, 5), axis=0))


def cluster_cells(features: np.ndarray, sources: int | None = None, seed: int = 0) -> np.ndarray:
    """(n, K) feature vectors of the sounding cells -> (n,) cluster index by k-means.

    `sources=None` picks 2..4 by the silhouette score, or 1 when even the best is below
    SILHOUETTE_MIN. Clusters are not ordered here.
    """
    from sklearn.cluster import KMeans  # scikit-learn is slow to import: only when grouping
    from sklearn.metrics import silhouette_score

    n = len(features)
    distinct = _distinct(features)
    if sources is not None:
        k = max(1, min(sources, distinct))
        if k < sources:
            msg = f"only {k} distinct sounding cells: {k} sources, not {sources}"
            warnings.warn(msg, stacklevel=2)
        if k == 1:
            return np.zeros(n, np.int64)
        return KMeans(k, n_init=10, random_state=seed).fit_predict(features)
    best, best_score = np.zeros(n, np.int64), SILHOUETTE_MIN
    for k in range(2, min(MAX_AUTO_SOURCES, distinct - 1) + 1):
        labels = KMeans(k, n_init=10, random_state=seed).fit_predict(features)
        score = silhouette_score(features, labels)
        if score > best_score:
            best, best_score = labels, score
    return best


def group_cells(
    features: np.ndarray, energy: np.ndarray, sources: int | None = None
) -> tuple[np.ndarray, float]:
    """Per-cell features (h, w, K) and mean energy (h, w) -> (labels (h, w), energy threshold).

    labels: source index per cell, -1 for silent cells; source 0 holds the most energy.
    """
    sound, thr = sounding_cells(energy)
    labels = np.full(energy.shape, -1, np.int64)
    found = cluster_cells(features[sound], sources)
    totals = [energy[sound][found == c].sum() for c in range(found.max() + 1)]
    order = np.argsort(totals)[::-1]  # loudest first
    labels[sound] = np.argsort(order)[found]
    return labels, thr


SOUNDING_FRAMES = 0.25  # a cell sounds in a video when it sounds in this share of its frames
MIN_CELLS = 4  # a source is at least this many connected sounding cells (one cell is noise)


def sounding_groups(
    sounding: np.ndarray, sources: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A grounding head's maps (T, h, w) of probabilities -> (labels (h, w), -1 for silent
    cells; how sure (S,): each source's mean probability where it sounds).

    The model decides, not a per-video threshold: a cell sounds in a frame when its probability
    is over 0.5, and in the video when it does in SOUNDING_FRAMES of the frames (an instrument
    rests now and then). Each connected group of sounding cells (8 neighbours) of at least
    MIN_CELLS is one source, the surest first; `sources` keeps that many at most. A video
    where nothing sounds has no source.
    """
    from scipy import ndimage

    on = sounding > 0.5  # (T, h, w)
    found, count = ndimage.label(on.mean(0) >= SOUNDING_FRAMES, structure=np.ones((3, 3)))
    groups, sure = [], []
    for g in range(1, count + 1):
        cells = found == g
        if cells.sum() >= MIN_CELLS:
            groups.append(cells)
            sure.append(float(sounding[:, cells][on[:, cells]].mean()))
    order = np.argsort(sure)[::-1][:sources]
    labels = np.full(sounding.shape[1:], -1, np.int64)
    for i, g in enumerate(order):
        labels[groups[g]] = i
    return labels, np.array([sure[g] for g in order], np.float32)


# --- pixels, boxes and cells ------------------------------------------------------------------


def cell_of(x: float, y: float, width: int, height: int, grid: tuple[int, int]) -> tuple[int, int]:
    """The feature-grid cell (row, col) under pixel (x, y) of a width x height frame."""
    h, w = grid
    return min(h - 1, int(y * h / height)), min(w - 1, int(x * w / width))


def cell_centres(width: int, height: int, grid: tuple[int, int]) -> np.ndarray:
    """(h, w, 2) centre (x, y) of every feature-grid cell in pixels of a width x height frame."""
    h, w = grid
    ys = (np.arange(h) + 0.5) * height / h
    xs = (np.arange(w) + 0.5) * width / w
    return np.stack(np.meshgrid(xs, ys), axis=-1)


def check_points(points: list[tuple[int, int]], info: MediaInfo) -> None:
    for x, y in points:
        if not (0 <= x < info.width and 0 <= y < info.height):
            raise PixelPlayerError(
                f"point ({x}, {y}) is outside the {info.width}x{info.height} frame of "
                f"{info.path}: x must be in 0..{info.width - 1} and y in 0..{info.height - 1}"
            )


def check_boxes(boxes: list[tuple[int, int, int, int]], info: MediaInfo) -> None:
    for x0, y0, x1, y1 in boxes:
        if not (0 <= x0 < x1 <= info.width and 0 <= y0 < y1 <= info.height):
            raise PixelPlayerError(
                f"box ({x0}, {y0}, {x1}, {y1}) is not inside the {info.width}x{info.height} "
                f"frame of {info.path} with x0 < x1 and y0 < y1"
            )


def box_cells(
    box: tuple[int, int, int, int], width: int, height: int, grid: tuple[int, int]
) -> np.ndarray:
    """(h, w) bool: the feature-grid cells whose centre lies in the box (at least the cell
    under the box's centre)."""
    x0, y0, x1, y1 = box
    centres = cell_centres(width, height, grid)  # (h, w, 2)
    xs, ys = centres[0, :, 0], centres[:, 0, 1]
    inside = ((ys >= y0) & (ys < y1))[:, None] & ((xs >= x0) & (xs < x1))[None, :]
    inside[cell_of((x0 + x1) / 2, (y0 + y1) / 2, width, height, grid)] = True
    return inside


def one_cell(row: int, col: int, grid: tuple[int, int]) -> np.ndarray:
    """(h, w) bool: the cell (row, col) alone."""
    m = np.zeros(grid, bool)
    m[row, col] = True
    return m


def lattice_cells(grid: int, width: int, height: int, feat: tuple[int, int]) -> np.ndarray:
    """(grid * grid, 2) feature cell under the centre of each cell of a grid x grid lattice."""
    cells = [
        cell_of((j + 0.5) * width / grid, (i + 0.5) * height / grid, width, height, feat)
        for i in range(grid)
        for j in range(grid)
    ]
    return np.array(cells, np.int64).reshape(-1, 2)
