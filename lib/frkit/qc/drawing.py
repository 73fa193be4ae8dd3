"""qc.png drawn by a second process while the first one measures.

Importing matplotlib and drawing the figure take about half a second, as
long as measuring 300 frames of 256 x 256. A thread cannot overlap that: an
import runs Python code and holds the GIL, which the measuring threads need
between their numpy calls. A child process imports matplotlib on another
core while the pass runs; the parent sends what the figure shows when the
pass is done (pickled, through the child's stdin) and waits for the file.

    with FigureProcess() as drawer:        # started before the pass
        ...                                # measure
        drawer.draw(path, summary, frames, images, title)

The child writes ``path`` atomically, or nothing; closing the parent's end
without drawing (an error in the pass) ends it without a file.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

from ..errors import FrkitError, OutputError

__all__ = ["FigureProcess", "main"]


class FigureProcess:
    """A child ``python -m frkit.qc.drawing`` that draws one recording's qc.png."""

    def __init__(self):
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except (OSError, ValueError):  # no interpreter to start (an embedded Python): draw() draws here
            self.proc = None

    def draw(self, path, summary: dict, frames: dict, images: dict, title: str) -> None:
        """Have the child draw :func:`~frkit.qc.figures.recording_figure` into ``path``; wait for it.

        OutputError (the child's last line) when it could not.
        """
        if self.proc is None:
            from .figures import draw_recording

            draw_recording(path, summary, frames, images, title)
            return
        payload = pickle.dumps((str(path), summary, frames, images, title), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            _, err = self.proc.communicate(payload)
        except BrokenPipeError:  # it ended before reading: its error is on stderr
            err = self.proc.stderr.read()
            self.proc.wait()
        if self.proc.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines() or [f"exit status {self.proc.returncode}"]
            why = lines[-1]
            raise OutputError(why if why.startswith(f"{path}:") else f"{path}: the figure could not be drawn: {why}")

    def close(self) -> None:
        """End the child if it still waits (nothing drawn); idempotent."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            self.proc.communicate()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main() -> int:
    """The child: import matplotlib at once, then draw what arrives on stdin (nothing: exit quietly)."""
    from .figures import draw_recording, preload_matplotlib

    preload_matplotlib()
    data = sys.stdin.buffer.read()
    if not data:
        return 0
    path, summary, frames, images, title = pickle.loads(data)
    try:
        draw_recording(path, summary, frames, images, title)
    except Exception as exc:  # one line for the parent's error message (frkit's own errors name the file)
        print(exc if isinstance(exc, FrkitError) else f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    status = main()
    sys.stderr.flush()
    os._exit(status)  # at once: the interpreter's teardown (matplotlib's modules) would keep the parent 0.1 s
