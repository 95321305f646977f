"""Errors a user can act on: the CLI prints their message, never a traceback."""


class DiffreidError(Exception):
    """Bad input or configuration; the message names the file and the fix."""


class DatasetError(DiffreidError):
    """A dataset cannot be read as the named format."""
