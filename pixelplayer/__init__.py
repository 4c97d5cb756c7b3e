"""pixelplayer: visually guided sound separation and localization."""

__version__ = "0.1.0"
