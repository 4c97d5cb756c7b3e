"""`pixelplayer data synth|prepare|info|music|cache`: make, prepare and inspect datasets."""

from __future__ import annotations

import argparse


def add_arguments(sub: argparse._SubParsersAction) -> None:
    from pixelplayer.data import cache, info, music, prepare, synth

    p = sub.add_parser(
        "data",
        help="make, prepare and inspect datasets",
        description="Make, prepare and inspect datasets of videos.",
    )
    dsub = p.add_subparsers(
        dest="data_verb", metavar="{synth,prepare,info,music,cache}", required=True
    )
    for module in (synth, prepare, info, music, cache):
        module.add_arguments(dsub)
