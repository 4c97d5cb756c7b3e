"""Localization scored against a generated duet's ground truth (`data synth --duets`).

A duet's meta file says where each instrument's picture is in every frame (its box, the picture
drawn into it with its pose) and holds each instrument's stem. From them, per sampled frame:

- which instruments sound: a stem holding at least `SOUNDING_SHARE` of all stems' energy over
  the frame's span (the melodies rest: an instrument can be on screen and silent);
- what each cell of a map shows: an instrument (on an opaque pixel of a sounding instrument's
  picture), a resting instrument, a box corner (inside a box, off its picture), a distractor,
  or background;
- which of those count as sounding (`RULES`), and balanced samples of sounding and silent cells
  of a map (energy or motion), each as its share of the frame's total;
- the share of samples told apart right by one threshold: their median, or the model's own
  absolute decision (`accuracy`);
- the field's metrics of a map of probabilities (`grounding_scores`): CIoU, the IoU of the cells
  called sounding with those on sounding instruments, as the share of frames reaching 0.3 and
  its area under the curve over thresholds 0 to 1 (Discriminative Sounding Objects
  Localization's protocol), and NSA, the share of the cells that show no sounding instrument
  called silent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pixelplayer.data.synth import picture_alpha

SOUNDING_SHARE = 0.01  # an instrument sounds in a frame when it holds 1 % of its energy

# which cells count as sounding (True), silent (False), or are left out (absent), by kind
RULES: dict[str, dict[str, bool]] = {
    "sounding instruments": {"instrument": True, "box corner": False, "distractor": False,
                             "background": False},
    "resting as silent": {"instrument": True, "resting instrument": False, "box corner": False,
                          "distractor": False, "background": False},
    "resting as sounding": {"instrument": True, "resting instrument": True, "box corner": False,
                            "distractor": False, "background": False},
}  # fmt: skip
BOXES = "boxes"  # the rule that counts every cell in an instrument's box as sounding


def inside(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, 2) points (x, y), (B, 4) boxes x0, y0, x1, y1 -> (N,) inside any box."""
    if len(boxes) == 0:
        return np.zeros(len(points), bool)
    x, y = points[:, None, 0], points[:, None, 1]
    b = boxes[None]
    return ((x >= b[..., 0]) & (x < b[..., 2]) & (y >= b[..., 1]) & (y < b[..., 3])).any(1)


def grid_centres(height: int, width: int, grid: tuple[int, int]) -> np.ndarray:
    """(h * w, 2) centre (x, y) of every cell of an h x w map spread over the whole frame."""
    h, w = grid
    ys, xs = (np.arange(h) + 0.5) * height / h, (np.arange(w) + 0.5) * width / w
    return np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)


def on_instruments(
    points: np.ndarray, meta: dict, k: int, which: Sequence[int] | None = None
) -> np.ndarray:
    """(N, 2) points (x, y) -> (N,) whether each lies on an opaque pixel of an instrument's
    picture in frame k of a duet (its box at that frame, the picture drawn into it); `which`:
    the indices of the instruments to look at (default all)."""
    on = np.zeros(len(points), bool)
    for i, s in enumerate(meta["sources"]):
        if which is not None and i not in which:
            continue
        x0, y0, x1, y1 = s["boxes"][k]
        alpha = picture_alpha(s["image"], x1 - x0, y1 - y0, s.get("pose"))  # (h, w)
        hit = inside(points, np.array([[x0, y0, x1, y1]], float))
        px = np.clip((points[hit, 0] - x0).astype(int), 0, alpha.shape[1] - 1)
        py = np.clip((points[hit, 1] - y0).astype(int), 0, alpha.shape[0] - 1)
        on[np.flatnonzero(hit)[alpha[py, px] > 0.5]] = True
    return on


def cell_kinds(
    centres: np.ndarray, meta: dict, k: int, sounding: Sequence[bool] | None = None
) -> np.ndarray:
    """(N,) what each point shows in frame k: instrument, resting instrument (one whose
    `sounding` flag is False), box corner (inside an instrument's box, off its picture),
    distractor, or background."""
    inst = np.array([s["boxes"][k] for s in meta["sources"]], float)
    dis = np.array([d["boxes"][k] for d in meta.get("distractors", [])], float).reshape(-1, 4)
    kinds = np.full(len(centres), "background", dtype=object)
    kinds[inside(centres, dis)] = "distractor"
    kinds[inside(centres, inst)] = "box corner"  # instruments are drawn over distractors
    if sounding is None:
        sounding = [True] * len(inst)
    resting = [i for i, on in enumerate(sounding) if not on]
    playing = [i for i, on in enumerate(sounding) if on]
    kinds[on_instruments(centres, meta, k, resting)] = "resting instrument"
    kinds[on_instruments(centres, meta, k, playing)] = "instrument"  # where both overlap
    return kinds


def sounding_sources(stems: np.ndarray, sr: int, times: np.ndarray, fps: float) -> np.ndarray:
    """(T, N) whether each of the N stems (N, L) holds at least SOUNDING_SHARE of the energy
    of all stems over each frame's span [times[t], times[t] + 1 / fps)."""
    out = np.zeros((len(times), len(stems)), bool)
    for t, start in enumerate(times):
        a, b = int(round(start * sr)), int(round((start + 1 / fps) * sr))
        e = np.square(stems[:, a:b]).sum(1)  # (N,)
        out[t] = e >= SOUNDING_SHARE * max(e.sum(), 1e-20)
    return out


def duet_samples(
    maps: np.ndarray,
    frame_times: np.ndarray,
    frame_size: tuple[int, int],
    meta: dict,
    sounding: np.ndarray,
    rng: np.random.Generator,
    rule: str,
    shares: bool = True,
) -> tuple[list, list, list]:
    """(shares of each frame's total, is sounding, kind of cell) of balanced cell samples of
    `maps` (T, h, w) (an energy or a motion map over frames shown at `frame_times`, of a video
    of `frame_size` (width, height)) from every sounding frame. `sounding` (T, N): which
    instruments sound in each frame; `rule`: a key of RULES (what each kind of cell counts
    as), or BOXES (every cell in an instrument's box sounds, the rest not). shares=False keeps
    the values as they are (probabilities on an absolute scale)."""
    boxes = [np.asarray(s["boxes"], float) for s in meta["sources"]]  # (T_meta, 4) each
    centres = grid_centres(frame_size[1], frame_size[0], maps.shape[1:])
    totals = maps.reshape(len(maps), -1).sum(1)
    values, truth, kinds = [], [], []
    for t, time_s in enumerate(frame_times[: len(maps)]):
        if totals[t] <= 1e-6 * totals.max() or not sounding[min(t, len(sounding) - 1)].any():
            continue  # a silent moment: nothing to localize
        k = min(len(boxes[0]) - 1, int(round(time_s * meta["fps"])))
        kind = cell_kinds(centres, meta, k, sounding[min(t, len(sounding) - 1)])
        if rule == BOXES:
            pos = inside(centres, np.stack([b[k] for b in boxes]))
            neg = ~pos
        else:
            says = np.array([RULES[rule].get(x) for x in kind], dtype=object)
            pos, neg = says == True, says == False  # noqa: E712 (None: left out)
        yes, no = np.flatnonzero(pos), np.flatnonzero(neg)
        n = min(len(yes), len(no))
        if n == 0:
            continue
        share = maps[t].reshape(-1) / (totals[t] if shares else 1.0)
        for cells, label in ((yes, True), (no, False)):
            pick = rng.choice(cells, n, replace=False)
            values.extend(share[pick])
            truth.extend([label] * n)
            kinds.extend(kind[pick])
    return values, truth, kinds


def accuracy(
    values: Sequence[float],
    truth: Sequence[bool],
    kinds: Sequence[str] | None = None,
    threshold: float | None = None,
) -> tuple[float, int, dict[str, float]]:
    """Right share with one threshold (None: the median of all values, an even split since
    the classes are balanced; else the model's own, e.g. 0.5 on probabilities), the count,
    and per kind of cell the share called sounding."""
    values, truth = np.asarray(values), np.asarray(truth)
    sounding = values > (np.median(values) if threshold is None else threshold)
    kinds = np.array(kinds if kinds is not None else [], dtype=object)
    per_kind = {k: float(np.mean(sounding[kinds == k])) for k in dict.fromkeys(kinds)}
    return float(np.mean(sounding == truth)), len(values), per_kind


CIOU_AT = 0.3  # a frame is localized when its IoU reaches this (the field's CIoU@0.3)


def frame_ious(
    maps: np.ndarray,
    frame_times: np.ndarray,
    frame_size: tuple[int, int],
    meta: dict,
    sounding: np.ndarray,
    threshold: float = 0.5,
) -> tuple[list[float], dict[str, list[int]]]:
    """Per frame where an instrument sounds: the IoU of the cells of `maps` (T, h, w) over
    `threshold` with the cells on sounding instruments; and per kind of cell, [called
    sounding, count] over those frames."""
    centres = grid_centres(frame_size[1], frame_size[0], maps.shape[1:])
    frames = len(meta["sources"][0]["boxes"])
    ious, kinds = [], {}
    for t, time_s in enumerate(frame_times[: len(maps)]):
        playing = sounding[min(t, len(sounding) - 1)]
        if not playing.any():
            continue
        k = min(frames - 1, int(round(time_s * meta["fps"])))
        kind = cell_kinds(centres, meta, k, playing)
        called = maps[t].reshape(-1) > threshold
        truth = kind == "instrument"
        union = (called | truth).sum()
        ious.append(float((called & truth).sum() / union) if union else 1.0)
        for name in dict.fromkeys(kind):
            got = kinds.setdefault(name, [0, 0])
            got[0] += int(called[kind == name].sum())
            got[1] += int((kind == name).sum())
    return ious, kinds


def grounding_scores(ious: Sequence[float], kinds: dict[str, list[int]]) -> dict[str, float]:
    """CIoU@0.3 and its AUC (in %, over frames), NSA (in %: the cells showing no sounding
    instrument called silent), and per kind of cell the share called sounding (%)."""
    ious = np.asarray(ious, float)
    steps = np.linspace(0, 1, 21)[:-1]  # success rate at IoU thresholds 0, 0.05, ..., 0.95
    silent = [v for name, v in kinds.items() if name != "instrument"]
    scores = {
        "ciou": 100 * float(np.mean(ious >= CIOU_AT)),
        "auc": 100 * float(np.mean([np.mean(ious >= s) for s in steps])),
        "nsa": 100 * (1 - sum(v[0] for v in silent) / max(1, sum(v[1] for v in silent))),
    }
    return scores | {f"sounding {k}": 100 * v[0] / max(1, v[1]) for k, v in kinds.items()}
