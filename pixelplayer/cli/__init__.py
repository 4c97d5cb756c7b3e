"""`pixelplayer <verb>`: a thin layer that parses arguments and calls the library.

One module per verb (`pixelplayer.cli.<verb>`, each with `add_arguments(subparsers)`) parses
and calls; the work lives in the library. Every verb is callable in-process as `main([...])`,
which returns the exit code. Errors the user can act on (`PixelPlayerError`) print as one line;
`--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pixelplayer import __version__
from pixelplayer.errors import PixelPlayerError

VERBS = ("data", "train", "evaluate", "separate")  # pixelplayer.cli.<verb> modules, in --help order

DESCRIPTION = """\
Visually guided sound separation and localization (PixelPlayer, AMnet, AV-MIML + NMF).

Typical flow:
  pixelplayer data synth data/synth            # make a MUSIC-like dataset of solo videos
  pixelplayer data prepare data/synth/videos data/prepared
  pixelplayer train --config pixelplayer-cpu --data data/prepared --out runs/pp
  pixelplayer eval runs/pp --data data/prepared
  pixelplayer separate video.mp4 --model runs/pp   # where each sound is, and what it sounds like

AMnet, after PixelPlayer (its appearance stage):
  pixelplayer train --model ame --data data/prepared --out runs/ame   # audio-motion embedding
  pixelplayer train --model amnet --data data/prepared --out runs/amnet \\
      --set model_kwargs.appearance_run=runs/pp --set model_kwargs.ame_run=runs/ame
  pixelplayer eval runs/amnet --data data/prepared --same-class      # players that look alike
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixelplayer",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pixelplayer {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="verb", metavar="<verb>", required=True)
    for name in VERBS:
        # a verb whose module does not import is an installation error to see, not to hide
        importlib.import_module(f"pixelplayer.cli.{name}").add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):  # progress lines reach a log file as they are printed
        sys.stdout.reconfigure(line_buffering=True)
    try:
        result = args.func(args)
    except PixelPlayerError as exc:
        if args.debug:
            raise
        print(f"pixelplayer: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pixelplayer: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
