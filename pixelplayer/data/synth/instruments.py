"""The classes of the generated world: each instrument's General MIDI sound and how it plays.

Their pictures are in pixelplayer.data.pictures; the styles named here in compose.STYLES.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Instrument:
    """One class: its General MIDI sound and how it plays (its pictures: pictures.py)."""

    name: str
    program: int  # GM program 0-127; for percussion the drum kit in bank 128
    low: int  # natural MIDI note range, inclusive (unused for percussion)
    high: int
    style: str  # key of STYLES: note lengths, articulation, chords
    percussion: bool = False

    @property
    def bank(self) -> int:
        return 128 if self.percussion else 0

    @property
    def channel(self) -> int:
        return 9 if self.percussion else 0  # GM percussion lives on channel 10 (index 9)


CLASSES: dict[str, Instrument] = {
    i.name: i
    for i in (
        Instrument("violin", 40, 55, 88, "bowed"),
        Instrument("acoustic_guitar", 24, 40, 76, "plucked"),
        Instrument("trumpet", 56, 55, 82, "wind"),
        Instrument("saxophone", 65, 49, 80, "wind"),
        Instrument("flute", 73, 60, 93, "wind"),
        Instrument("accordion", 21, 53, 84, "reed"),
        Instrument("piano", 0, 40, 88, "keys"),
        Instrument("banjo", 105, 48, 81, "plucked"),
        Instrument("drums", 0, 35, 81, "drums", percussion=True),
        Instrument("french_horn", 60, 41, 77, "wind"),
        # the other instruments of the MUSIC dataset that General MIDI has
        Instrument("cello", 42, 36, 76, "bowed"),
        Instrument("clarinet", 71, 50, 89, "wind"),
        Instrument("tuba", 58, 28, 58, "wind"),
        Instrument("xylophone", 13, 53, 96, "mallet"),
    )
}
