"""Errors that carry a message for the user, shown by the CLI without a traceback."""


class EdgehoundError(Exception):
    """An error the user can act on: the message names the file or setting and the problem."""


class ImageError(EdgehoundError):
    """An image file that cannot be read or decoded."""
