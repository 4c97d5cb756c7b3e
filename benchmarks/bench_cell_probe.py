"""How much does a frame net's cell know about where the instrument is?

    python benchmarks/bench_cell_probe.py --run RUN --duets DIR [--sizes 160 320] [--every 10]

A ceiling for any map drawn from the run's frame net (the grounding head's, the energy map):
on generated duets and trios (`pixelplayer data synth OUT --clips 0 --duets N --trios N`),
every `--every`-th frame is resized to each of `--sizes` px, its cells' features are read at
two depths (the backbone's output, and the K channels the masks are made from), and a linear
probe (logistic regression, balanced classes) learns from the boxes of the meta files which
cells lie on an instrument's picture and which on background or a silent distractor (box
corners and resting instruments left out; the ground truth is pixelplayer.localization's).
It is trained on the even-numbered videos and scored on the odd ones: ROC AUC, and the
balanced accuracy of its own decision. The probe is a measurement with labels; no model
learns from them. A self-supervised head reading the same cells cannot do better than its
probe, so a 95 % cell accuracy needs a probe near it first.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from pixelplayer.localization import cell_kinds, grid_centres
from pixelplayer.models.frame import normalize_pixels
from pixelplayer.models.registry import load_model
from pixelplayer.video import read_frames

SILENT_KINDS = ("background", "distractor")


def cell_samples(
    frame_net: torch.nn.Module, duets: Path, size: int, every: int
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, tuple[int, int]]:
    """-> ({depth: (n, C) cell features}, (n,) on an instrument, (n,) video number, grid)."""
    feats: dict[str, list[np.ndarray]] = {"backbone": [], "K channels": []}
    truth, video = [], []
    metas = sorted((duets / "meta").glob("*.json"))
    metas = [m for m in metas if json.loads(m.read_text()).get("kind") in ("duet", "trio")]
    if not metas:
        raise SystemExit(f"{duets}: no duets or trios (pixelplayer data synth OUT --duets N)")
    for v, path in enumerate(metas):
        meta = json.loads(path.read_text())
        frames = read_frames(duets / meta["video"], fps=meta["fps"])[::every]  # (T, H, W, 3)
        small = np.stack([np.asarray(Image.fromarray(f).resize((size, size), 2)) for f in frames])
        with torch.no_grad():
            x = frame_net.features(normalize_pixels(torch.from_numpy(small).permute(0, 3, 1, 2)))
            depths = {"backbone": x, "K channels": frame_net.fc(x)}  # (T, C, h, w) each
        h, w = x.shape[2:]
        centres = grid_centres(meta["size"], meta["size"], (h, w))
        for t in range(len(frames)):
            kinds = cell_kinds(centres, meta, t * every)
            keep = (kinds == "instrument") | np.isin(kinds, SILENT_KINDS)
            for name, f in depths.items():
                feats[name].append(f[t].flatten(1).T[keep].float().numpy())
            truth.append(kinds[keep] == "instrument")
            video.append(np.full(keep.sum(), v))
    cells = {k: np.concatenate(f) for k, f in feats.items()}
    return cells, np.concatenate(truth), np.concatenate(video), (h, w)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="a PixelPlayer run folder (best.pt)")
    ap.add_argument("--duets", type=Path, required=True, help="generated duets and trios")
    ap.add_argument("--sizes", type=int, nargs="+", default=[160, 320], help="frame sizes, px")
    ap.add_argument("--every", type=int, default=10, help="read every N-th frame")
    args = ap.parse_args()
    model, _ = load_model(args.run / "best.pt")
    frame_net = model.eval().frame_net
    for size in args.sizes:
        feats, truth, video, (h, w) = cell_samples(frame_net, args.duets, size, args.every)
        train = video % 2 == 0
        for depth, x in feats.items():
            probe = LogisticRegression(C=0.1, max_iter=2000, class_weight="balanced")
            probe.fit(x[train], truth[train])
            score = probe.decision_function(x[~train])
            print(
                f"{size} px frames ({h}x{w} cells; {len(truth)} kept, {100 * truth.mean():.1f} % "
                f"on instruments), {depth} "
                f"({x.shape[1]} ch): probe AUC {roc_auc_score(truth[~train], score):.3f}, "
                f"balanced accuracy {100 * balanced_accuracy_score(truth[~train], score > 0):.1f} %"
            )


if __name__ == "__main__":
    main()
