"""Errors a user can act on: the CLI prints them as one line, without a traceback."""


class PixelPlayerError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""


def printable(text: str) -> str:
    """`text` with control characters escaped: a newline in a file name would break a
    one-line message."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class MediaError(PixelPlayerError):
    """A media file that cannot be used: unreadable, missing a stream, too short or silent.

    `reason` is a short machine-friendly tag (e.g. "no audio stream") used in rejected.csv.
    """

    def __init__(self, path: str, reason: str, detail: str = ""):
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        msg = f"{printable(self.path)}: {reason}" + (f" ({detail})" if detail else "")
        super().__init__(msg)
