"""`pixelplayer train`: parse, then `pixelplayer.training.train`."""

from __future__ import annotations

import argparse
import json

from pixelplayer import distributed
from pixelplayer.config import load_config
from pixelplayer.run import Run
from pixelplayer.training import train

MODEL_PRESETS = {  # --model: the preset it starts from
    "ame": "ame",
    "amnet": "amnet",
    "miml": "miml",
    "pixelplayer": "pixelplayer-cpu",
}


def add_arguments(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model (resumes an existing run)",
        description=(
            "Train a model on prepared data: PixelPlayer and AMnet by mix-and-separate, AMnet's "
            "audio-motion embedding by triplets, AV-MIML on each video's NMF bases. The run "
            "folder gets the resolved config, checkpoints (last.pt; best.pt by the validation "
            "figure: SDR, or the embedding's triplet accuracy), history.csv and TensorBoard "
            "logs. Calling again with the same --out resumes the run."
        ),
    )
    p.add_argument(
        "--config",
        help="a YAML config file, or a preset's name: pixelplayer-cpu (a 2-core CPU), "
        "pixelplayer-paper (the paper's sizes, a GPU), ame, amnet, miml",
    )
    p.add_argument(
        "--model",
        choices=sorted(MODEL_PRESETS),
        help="use this model's preset when --config is not given: pixelplayer-cpu, miml "
        "(AV-MIML), ame (AMnet's audio-motion embedding), amnet (AMnet's motion stage)",
    )
    p.add_argument("--data", required=True, help="prepared folder (with train.csv, val.csv)")
    p.add_argument("--out", required=True, help="run folder (created, or resumed)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value, e.g. --set train.max_minutes=5 (repeatable)",
    )
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument(
        "--frame-weights",
        help="ImageNet weights for the frame net's backbone: a ResNet-18 state dict "
        "(torchvision keys), or EfficientNet-Lite0's for frame.backbone=efficientnet-lite0 "
        "(the CPU preset takes the installed package's)",
    )
    p.add_argument(
        "--init",
        metavar="RUN",
        help="fine-tune: a new run starts from RUN's weights (its best.pt, else last.pt, or a "
        "checkpoint file), copying the tensors that match by name and shape (report: init.json)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pixelplayer.checks import device as check_device

    check_device(args.device)  # before any work: a device this build lacks is one line
    folder = Run(args.out)
    overrides = list(args.set)
    if args.model and not args.config and not folder.exists():
        args.config = MODEL_PRESETS[args.model]
    if args.frame_weights:
        overrides.append(f"frame_weights={args.frame_weights}")
    if args.init:  # quoted: the override's value is YAML, and a path must stay a string
        overrides.append(f"init={json.dumps(args.init)}")
    cfg = None
    if args.config or overrides:
        if not args.config and folder.exists():
            cfg = folder.config_with(overrides)
        else:
            cfg = load_config(args.config, overrides)
    summary = train(cfg, args.data, args.out, device=args.device, progress=not args.no_progress)
    if distributed.env_world()[0] != 0:  # under torchrun, rank 0 speaks for all
        return 0
    best = f" ({summary['best']})" if "best" in summary else ""
    print(f"run folder: {summary['out']}{best}")
    return 0
