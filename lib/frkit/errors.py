"""Errors that the command-line tools report as one line and exit status 2.

Library code raises these for problems the user can fix (bad files, bad
options, unwritable places). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class FrkitError(Exception):
    """A problem with the user's input, options or environment."""

    exit_code = 2


class InputError(FrkitError):
    """An input file is missing, unreadable, truncated or has the wrong layout."""


class OptionError(FrkitError):
    """An option or configuration value is invalid."""


class OutputError(FrkitError):
    """An output cannot be written."""
