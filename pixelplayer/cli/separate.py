"""`pixelplayer separate`."""

from pixelplayer.separation.separate import add_arguments

__all__ = ["add_arguments"]
