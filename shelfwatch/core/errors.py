"""Errors a user can act on; the CLI prints them as one line without a traceback."""


class ShelfWatchError(Exception):
    """An expected failure with a message meant for a person."""


class BadInputError(ShelfWatchError):
    """A file or value given by the user cannot be used."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason
