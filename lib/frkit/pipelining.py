"""Overlap file I/O with compute: read the next chunk and write the last one
while the current one is computed. Order is kept; an error in a helper
thread is raised in the main thread at the point where its result is used.
"""

from __future__ import annotations

import os
import queue
import threading

__all__ = ["ReadAhead", "BackgroundWriter", "available_cpus", "thread_count", "keep_freed_memory"]


def available_cpus() -> int:
    """CPUs this process may run on (honours affinity masks set by SLURM etc.)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def keep_freed_memory(largest: int = 32 << 20) -> bool:
    """Have glibc's malloc keep freed blocks up to ``largest`` bytes for reuse (a whole process's setting).

    A streaming pass allocates and frees the same batch-sized arrays again
    and again. By default glibc gives large freed blocks back to the kernel
    (its mmap and trim thresholds start at 128 KB and adapt only in part,
    per thread arena), so every batch faults its memory in again: in fr-qc's
    pass that was a third of the CPU time, as system time. Kept, the freed
    memory is reused; the process holds at most its peak (O(batch)). False
    where the C library has no ``mallopt`` (not glibc): nothing changed.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    return bool(mallopt(m_mmap_threshold, largest)) and bool(mallopt(m_trim_threshold, 8 * largest))


def thread_count(workers: int | None) -> int:
    """The threads a ``--workers`` value asks for: 0, -1 or None mean every CPU this job may use."""
    return available_cpus() if not workers or workers < 1 else int(workers)

_END = object()


class ReadAhead:
    """Iterate ``(item, load(item))`` for ``items``, loading up to ``depth`` ahead."""

    def __init__(self, items, load, depth: int = 2):
        self._items = list(items)
        self._load = load
        self._q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="frkit-read", daemon=True)

    def _run(self):
        try:
            for item in self._items:
                if self._stop.is_set():
                    return
                self._q.put((item, self._load(item), None))
        except BaseException as exc:  # handed to the consumer
            self._q.put((None, None, exc))
            return
        self._q.put((_END, None, None))

    def __enter__(self):
        self._thread.start()
        return self

    def __iter__(self):
        while True:
            item, value, exc = self._q.get()
            if exc is not None:
                raise exc
            if item is _END:
                return
            yield item, value

    def __exit__(self, *exc):
        self._stop.set()
        while self._thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                self._q.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(timeout=0.05)


class BackgroundWriter:
    """Run submitted write jobs in order in one helper thread."""

    def __init__(self, depth: int = 2):
        self._q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="frkit-write", daemon=True)

    def _run(self):
        while True:
            job = self._q.get()
            if job is _END:
                return
            if self._error is None:
                try:
                    job()
                except BaseException as exc:
                    self._error = exc

    def __enter__(self):
        self._thread.start()
        return self

    def submit(self, job) -> None:
        if self._error is not None:
            raise self._error
        self._q.put(job)

    def flush(self) -> None:
        """Wait for every submitted job; raise the first error."""
        self._q.put(_END)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def __exit__(self, *exc):
        if self._thread.is_alive():
            self._q.put(_END)
            self._thread.join()
