"""Errors that the command-line tools report as one line and exit status 2 (3: a failed alignment).

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


class AlignmentError(FrkitError):
    """fr-align found the aligned averages clearly unrelated (see :func:`frkit.align.judge`); nothing written.

    A distinct exit status, so scripts and Make can tell it from bad input.
    """

    exit_code = 3
