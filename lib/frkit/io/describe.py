"""How a record names its input: path, size and modification time (one home for fr-compensate's record,
the session planner's staleness checks and fr-qc's qc.json). Light on purpose: no engine, no reader
imported until a recording of several files is described."""

from __future__ import annotations

from pathlib import Path

__all__ = ["describe_input"]


def describe_input(path) -> dict:
    """Path, size and modification time of an input (for the record and stage-1 staleness).

    A recording of several files (a directory, glob, list or T-series
    folder) is described by its directory (or pattern), the total size, the
    newest modification time and the file count, so adding, removing or
    changing any file of the group makes the record stale.
    """
    from .readers import recording_files

    if isinstance(path, (list, tuple)) and len(path) == 1:
        path = path[0]
    if isinstance(path, (str, Path)) and Path(path).is_file():
        p = Path(path)
        st = p.stat()
        return {"path": str(p.resolve()), "size": st.st_size, "mtime": st.st_mtime}
    files = recording_files(path)
    stats = [f.stat() for f in files]
    where = Path(path).resolve() if isinstance(path, (str, Path)) and Path(path).is_dir() else \
        [str(f.resolve()) for f in files][0] + f" (+{len(files) - 1} files)"
    # source: the recording as open_video takes it again (fr-qc reopens it from the record)
    source = str(Path(path).resolve()) if isinstance(path, (str, Path)) else [str(Path(p).resolve()) for p in path]
    return {"path": str(where), "size": sum(s.st_size for s in stats), "mtime": max(s.st_mtime for s in stats),
            "files": len(files), "source": source}
