"""`pixelplayer separate`."""

from pixelplayer.separate import add_arguments

__all__ = ["add_arguments"]
