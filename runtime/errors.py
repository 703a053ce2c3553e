"""Errors that carry a message for the user, shown by the CLI without a traceback."""


class EdgehoundError(Exception):
    """An error the user can act on: the message names the file or setting and the problem."""


class ImageError(EdgehoundError):
    """An image file that cannot be read or decoded."""


class ToolMissing(EdgehoundError):
    """A build tool this host lacks (a cross compiler, TVM's environment): the default export skips
    such a target and says so; a target asked for by name fails."""
