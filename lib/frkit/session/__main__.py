"""Session helpers used by the Makefile.

``python -m frkit.session plan CONFIG``  check the session, write its Make rules, print their path
``python -m frkit.session list CONFIG``  the stage-1 array tasks: task ids (1- and 0-based), recording, frames
``python -m frkit.session count CONFIG recordings|tasks|references``  array sizes (references: 0 without chunks)
``python -m frkit.session join FOLDER``  a time-chunked stage-1 folder's standard files from its chunks
"""

from __future__ import annotations

import sys

from ..cli.harness import fail
from ..errors import FrkitError

PROG = "frkit-session"


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        if len(args) == 2 and args[0] == "join":  # first, and its imports only: a step of every chunked recording
            from ..chunks import join

            join(args[1])
            return 0
        # the other commands read session.toml (plan also opens the recordings)
        from .config import load_config
        from .array import format_task_table
        from .plan import plan
        from .stages import stage1_tasks

        if len(args) == 2 and args[0] == "plan":
            print(plan(load_config(args[1])))
            return 0
        if len(args) == 2 and args[0] == "list":
            print(format_task_table(stage1_tasks(load_config(args[1]))))
            return 0
        if len(args) == 3 and args[0] == "count" and args[2] in ("recordings", "tasks", "references"):
            cfg = load_config(args[1])
            n = {"recordings": lambda: len(cfg.recordings()), "tasks": lambda: len(stage1_tasks(cfg)),
                 "references": lambda: len(cfg.recordings()) if cfg.settings.chunk_frames > 0 else 0}
            print(n[args[2]]())
            return 0
    except FrkitError as exc:
        return fail(PROG, str(exc), exc.exit_code)
    return fail(PROG, "usage: python -m frkit.session plan CONFIG | list CONFIG "
                      "| count CONFIG recordings|tasks|references "
                      "| join FOLDER")


if __name__ == "__main__":
    sys.exit(main())
