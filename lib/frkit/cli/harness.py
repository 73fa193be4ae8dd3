"""The command harness shared by the fr-* tools.

One place for: argument parsing errors, user errors (:class:`FrkitError`),
exit statuses, progress display and the summary line. Results go to files
(or stdout when a tool prints data); diagnostics go to stderr, one line each.

Exit statuses: 0 success, 2 bad usage or bad input (nothing half-written is
left), 130 interrupted, 1 an unexpected internal error (with traceback).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

# Frames run in parallel threads; BLAS/OpenMP pools inside each would
# over-subscribe the cores (and the cluster allocation). Set before numpy loads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS"):
    os.environ.setdefault(_var, "1")

import typer  # noqa: E402

from ..errors import FrkitError  # noqa: E402

# Recent typer releases vendor click privately; reach its exception classes
# through typer's public ones so either flavour works.
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_ClickExit = typer.Exit
_Abort = typer.Abort

__all__ = ["make_app", "run_app", "fail", "info", "progress_bar", "parse_floats", "parse_frames", "explicit", "load_session"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def make_app(help_text: str) -> typer.Typer:
    """A single-command Typer application with the shared settings."""
    return typer.Typer(
        help=help_text,
        add_completion=False,
        pretty_exceptions_enable=False,
        no_args_is_help=False,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
        # panels on a terminal; plain, complete text in pipes and logs (rich
        # truncates long option names at 80 columns)
        rich_markup_mode="rich" if sys.stdout.isatty() else None,
    )


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _stderr(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # pragma: no cover
        pass


def fail(prog: str, message: str, code: int = EXIT_USAGE) -> int:
    _stderr(f"{prog}: error: {_one_line(message)}")
    return code


def info(prog: str, message: str) -> None:
    _stderr(f"{prog}: {message}")


def run_app(app: typer.Typer, prog: str, argv: list[str] | None = None) -> int:
    """Run ``app`` as the program ``prog``; return the exit status."""
    command = typer.main.get_command(app)
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        rv = command.main(args=args, prog_name=prog, standalone_mode=False)
    except _UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            typer.echo(exc.ctx.get_help())
            return EXIT_USAGE
        hint = f" (see '{prog} --help')"
        return fail(prog, exc.format_message() + hint)
    except _ClickExit as exc:
        return exc.exit_code
    except _Abort:
        return fail(prog, "aborted", EXIT_INTERRUPTED)
    except FrkitError as exc:
        return fail(prog, str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return fail(prog, "interrupted", EXIT_INTERRUPTED)
    return rv if isinstance(rv, int) else 0


def main_for(app: typer.Typer, prog: str):
    """The console-script entry point of one tool."""

    def main() -> None:
        sys.exit(run_app(app, prog))

    return main


@contextmanager
def progress_bar(description: str, enabled: bool | None = None):
    """Yield ``update(done, total)``: a rich bar on a terminal, silent otherwise."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("frames"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done, total):
            bar.update(task, completed=done, total=total)

        yield update


def load_session(config):
    """The validated session.toml behind ``--config``, or None when not given."""
    if config is None:
        return None
    from ..session.config import load_config

    return load_config(config)


def explicit(ctx, name: str) -> bool:
    """Whether option ``name`` was given on the command line (config values yield to it)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT", "PROMPT")


def parse_floats(text: str, name: str, count: int | None = None) -> tuple[float, ...]:
    """``"1.5"`` or ``"1.5,2"`` -> floats; ``count`` fixes how many are allowed."""
    try:
        values = tuple(float(x) for x in str(text).replace(" ", "").split(",") if x != "")
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of numbers", param_hint=name) from None
    if not values:
        raise typer.BadParameter("needs at least one number", param_hint=name)
    if count is not None and len(values) not in (1, count):
        raise typer.BadParameter(f"needs 1 or {count} numbers, got {len(values)}", param_hint=name)
    return values


def parse_frames(text: str, name: str) -> tuple[int, ...]:
    """Frame indices: ``"50:500"`` (start:stop, 0-based, stop excluded) or ``"0,5,9"``."""
    text = str(text).replace(" ", "")
    try:
        if ":" in text:
            start_s, stop_s = text.split(":", 1)
            start, stop = int(start_s or 0), int(stop_s)
            if start < 0 or stop <= start:
                raise ValueError
            return tuple(range(start, stop))
        values = tuple(int(x) for x in text.split(",") if x != "")
        if not values or min(values) < 0:
            raise ValueError
        return values
    except ValueError:
        raise typer.BadParameter(f"{text!r}: use START:STOP (0-based, STOP excluded) or a list like 0,5,9",
                                 param_hint=name) from None
