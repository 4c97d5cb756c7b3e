"""`pixelplayer train`."""

from pixelplayer.train import add_arguments

__all__ = ["add_arguments"]
