"""`pixelplayer eval`."""

from pixelplayer.evaluate import add_arguments

__all__ = ["add_arguments"]
