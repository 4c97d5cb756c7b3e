"""How well do a frozen frame net's features name the instrument of a new picture?

    python benchmarks/bench_frame_probe.py --train PREPARED --test NAME=PREPARED ...
        [--sizes 224 288] [--frames 4]

A measurement of the frame nets the PixelPlayer presets can start from, before any training:
for each frozen ImageNet EfficientNet-Lite0 read-out (its stage 5, the 112 channels the
earlier preset used; and its head, the 1280 channels ImageNet's classifier reads), every
clip's `--frames` frames (spread over the clip, centre-cropped to each of `--sizes` px as
evaluation crops them) are turned into one vector each, the mean over the map's cells. A
linear probe (logistic regression on standardised vectors, C 0.02) learns the classes from
the training split of `--train` and names the frames of each `--test` set (every clip of its
index; classes the probe never saw are left out and counted). The probe is a measurement:
the class labels teach no model. A mask net whose visual vector comes from these features
cannot tell the instruments apart better than their probe.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from pixelplayer.data.dataset import load_frame
from pixelplayer.data.index import Clip, frame_path, read_index, resolve_index
from pixelplayer.models.frame import FrameNet, normalize_pixels

READOUTS = {"stage 5 (112 channels)": {"stages": 5}, "head (1280 channels)": {"head": True}}


def clip_frames(clips: list[Clip], per_clip: int, size: int) -> tuple[torch.Tensor, list[str]]:
    """`per_clip` frames of each clip, evenly spread -> (N, 3, size, size) uint8, N labels."""
    frames, labels = [], []
    for clip in clips:
        for i in np.linspace(0, clip.num_frames - 1, per_clip + 2)[1:-1].round().astype(int):
            frames.append(load_frame(frame_path(clip.frames_dir, int(i)), size, None))
            labels.append(clip.cls)
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2), labels


@torch.no_grad()
def vectors(net: FrameNet, frames: torch.Tensor, batch: int = 32) -> np.ndarray:
    """(N, 3, H, W) uint8 -> (N, C) the backbone's map averaged over its cells."""
    out = [
        net.features(normalize_pixels(frames[i : i + batch])).mean(dim=(2, 3))
        for i in range(0, len(frames), batch)
    ]
    return torch.cat(out).numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--train", type=Path, required=True, help="prepared folder; its train split")
    p.add_argument("--test", nargs="+", required=True, metavar="NAME=DIR",
                   help="prepared test sets, each scored on all its clips")  # fmt: skip
    p.add_argument("--sizes", type=int, nargs="+", default=[224, 288], help="frame sizes, px")
    p.add_argument("--frames", type=int, default=4, help="frames per clip")
    args = p.parse_args()
    tests = {}
    for spec in args.test:
        name, sep, folder = spec.partition("=")
        if not sep:
            p.error(f"--test takes NAME=DIR, got {spec!r}")
        tests[name] = read_index(resolve_index(folder, "all"))
    train = read_index(resolve_index(args.train, "train"))
    nets = {
        readout: FrameNet(backbone="efficientnet-lite0", pretrained="imagenet", **kwargs).eval()
        for readout, kwargs in READOUTS.items()
    }
    for size in args.sizes:
        x_train, y_train = clip_frames(train, args.frames, size)
        x_tests = {n: clip_frames(c, args.frames, size) for n, c in tests.items()}
        for readout, net in nets.items():
            f_train = vectors(net, x_train)
            scaler = StandardScaler().fit(f_train)
            probe = LogisticRegression(C=0.02, max_iter=3000)
            probe.fit(scaler.transform(f_train), y_train)
            cells = []
            for name, (x, y) in x_tests.items():
                y = np.array(y)
                known = np.isin(y, probe.classes_)
                guess = probe.predict(scaler.transform(vectors(net, x[torch.from_numpy(known)])))
                right = np.mean(guess == y[known]) * 100
                cells.append(f"{name} {right:.1f} % of {known.sum()} frames")
                if not known.all():
                    cells[-1] += f" ({(~known).sum()} frames of classes never trained left out)"
            print(f"{size} px, {readout}: " + "; ".join(cells), flush=True)


if __name__ == "__main__":
    main()
