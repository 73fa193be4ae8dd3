"""Session helpers used by the Makefile.

``python -m frkit.session plan CONFIG``  check the session, write its Make rules, print their path
``python -m frkit.session list CONFIG``  the recordings, one per line, in array order (1-based task N = line N)
"""

from __future__ import annotations

import sys

from ..cli.harness import fail
from ..errors import FrkitError
from .config import load_config
from .plan import plan

PROG = "frkit-session"


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        if len(args) == 2 and args[0] == "plan":
            print(plan(load_config(args[1])))
            return 0
        if len(args) == 2 and args[0] == "list":
            for p in load_config(args[1]).recordings():
                print(p)
            return 0
    except FrkitError as exc:
        return fail(PROG, str(exc), exc.exit_code)
    return fail(PROG, "usage: python -m frkit.session plan CONFIG | list CONFIG")


if __name__ == "__main__":
    sys.exit(main())
