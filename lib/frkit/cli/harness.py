"""The command harness shared by the fr-* tools.

A tool is its parameter declarations (:mod:`frkit.options`) and a function
that runs it; :func:`tool_main` turns the two into a console script. The
harness owns what every tool does the same way:

* the command line, built from the declarations: positional arguments,
  options grouped in help panels with their defaults, ``--version`` and
  ``-h/--help``;
* the merge ``defaults <- session.toml (--config) <- flags``, done once by
  :func:`frkit.options.resolve`, so a bad value is reported with where it
  came from;
* exit statuses: 0 success, 2 bad usage or bad input (one line on stderr,
  nothing half-written), 130 interrupted, 1 an unexpected internal error
  (with traceback);
* the progress bar (a terminal only) and the one summary line on stderr.

Results go to files; diagnostics go to stderr, one line each.
"""

from __future__ import annotations

import inspect
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, List, Optional

# Frames run in parallel threads; BLAS/OpenMP pools inside each would
# over-subscribe the cores (and the cluster allocation). Set before numpy loads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS"):
    os.environ.setdefault(_var, "1")

import typer  # noqa: E402

from .. import options  # noqa: E402
from .._version import __version__  # noqa: E402
from ..errors import FrkitError  # noqa: E402

# Recent typer releases vendor click privately; reach its exception classes
# through typer's public ones so either flavour works.
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")

__all__ = ["Invocation", "tool_main", "build_app", "run_app", "fail", "info", "progress_bar"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@dataclass
class Invocation:
    """One run of a tool: its resolved parameters and the session config (or None)."""

    prog: str
    values: options.Values
    config: object | None  # frkit.session.config.SessionConfig
    given: frozenset  # parameter names given on the command line

    def progress(self, description: str):
        """A progress bar context (see :func:`progress_bar`), silent with --quiet."""
        return progress_bar(description, False if self.values.get("quiet") else None)

    def report(self, message: str) -> None:
        """The summary line, unless --quiet."""
        if not self.values.get("quiet"):
            info(self.prog, message)


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


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"frkit {__version__}")
        raise typer.Exit(0)


def _cli_parameter(p: options.Param) -> inspect.Parameter:
    """The typer declaration of one parameter. Values arrive as text (or None when not given) and are
    parsed by the declaration, so the command line and session.toml share one parser and one message."""
    default = p.show_default()
    help_text = p.help + (f" [default: {default}]" if default and not p.argument else "")
    if p.argument:
        many = getattr(p.kind, "many", False)
        spec, annotation = typer.Argument(None, help=help_text, show_default=False, metavar=p.name.upper()), \
            Optional[List[str]] if many else Optional[str]
    elif isinstance(p.kind, options.Flag):
        names = [f"{f}/--no-{f[2:]}" if p.kind.negatable and f.startswith("--") else f for f in p.flags]
        spec, annotation = typer.Option(None, *names, help=help_text, show_default=False,
                                        rich_help_panel=p.panel), Optional[bool]
    else:
        many = getattr(p.kind, "many", False)
        spec = typer.Option(None, *p.flags, help=help_text, show_default=False, metavar=p.kind.metavar,
                            rich_help_panel=p.panel)
        annotation = Optional[List[str]] if many else Optional[str]
    return inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=spec, annotation=annotation)


def build_app(prog: str, help_text: str, params, run: Callable[[Invocation], int | None]) -> typer.Typer:
    """A single-command Typer application for ``params`` that calls ``run``."""
    app = typer.Typer(
        help=help_text, add_completion=False, pretty_exceptions_enable=False, no_args_is_help=False,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
        # panels on a terminal; plain, complete text in pipes and logs
        rich_markup_mode="rich" if sys.stdout.isatty() else None,
    )
    version = inspect.Parameter("version", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[bool],
                                default=typer.Option(None, "--version", callback=_print_version, is_eager=True,
                                                     help="Print the frkit version and exit."))
    signature = [_cli_parameter(p) for p in params] + [version]
    # typer reads positional arguments in signature order; keyword-only is fine for it
    signature = [s.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for s in signature]

    def command(**given):
        given.pop("version", None)
        flags = {k: (tuple(v) if isinstance(v, list) else v) for k, v in given.items() if v not in (None, [], ())}
        cfg = None
        if flags.get("config") is not None:
            from ..session.config import load_config

            cfg = load_config(flags["config"])
        values = options.resolve(params, cfg, flags)
        return run(Invocation(prog, values, cfg, frozenset(flags)))

    command.__signature__ = inspect.Signature(signature)
    command.__annotations__ = {s.name: s.annotation for s in signature}
    command.__doc__ = help_text
    app.command(help=help_text)(command)
    return app


class _Text:
    """A typer parameter's runtime coercion that passes the text through (None: nothing given).

    Every value arrives as text and :func:`frkit.options.resolve` parses it; recent typer releases would
    otherwise import pydantic and build a TypeAdapter per parameter at every start (about 0.15 s of a
    tool's start-up, which counts for fr-align, run once per recording)."""

    @staticmethod
    def coerce(value, param, ctx):
        if value is None:
            return () if param.multiple or param.nargs == -1 else None
        return value


def _text_coercion(command, prog: str) -> None:
    ctx = command.context_class(command, info_name=prog, **command.context_settings)
    for param in command.get_params(ctx):  # with --help, which click adds here
        if getattr(param, "_runtime_param", False) is None:  # typer's lazily built coercion; older typer: absent
            param._runtime_param = _Text


def run_app(app: typer.Typer, prog: str, argv: list[str] | None = None) -> int:
    """Run ``app`` as the program ``prog``; return the exit status."""
    command = typer.main.get_command(app)
    _text_coercion(command, prog)
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        rv = command.main(args=args, prog_name=prog, standalone_mode=False)
    except _UsageError as exc:
        return fail(prog, exc.format_message() + f" (see '{prog} --help')")
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        return fail(prog, "aborted", EXIT_INTERRUPTED)
    except FrkitError as exc:
        return fail(prog, str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return fail(prog, "interrupted", EXIT_INTERRUPTED)
    return rv if isinstance(rv, int) else 0


def tool_main(prog: str, help_text: str, params, run: Callable[[Invocation], int | None],
              skip_teardown: bool = False):
    """The console-script entry point of one tool (``main`` in its ``cmd/`` module).

    ``skip_teardown``: as a console script (no ``argv``), end the process at once after the run, its
    outputs complete and stdout/stderr flushed, without the interpreter's teardown of every module (with
    numba's compiler loaded about 0.3 s of CPU). For a tool whose run leaves nothing behind (no threads,
    no open files), where start-up time counts: fr-align, run once per recording.
    """
    app = build_app(prog, help_text, params, run)

    def main(argv=None) -> None:
        status = run_app(app, prog, argv)
        if skip_teardown and argv is None:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
        sys.exit(status)

    main.app = app
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
