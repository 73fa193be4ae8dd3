"""Compare two session output trees file by file: `python3 compare-outputs.py A B` (exit 1 on a difference).

Files must be byte-identical, except where the bytes hold when or where they were written: records
(`*.json` with a `created` key: their `result_parameters` must agree), fr-qc's `qc.json` (its
`folder` and `inputs` name the paths and modification times it read: everything else must agree)
and MATLAB files (the header says when they were created: the variables must be equal). Make's state folder (`.frkit`) and logs
are skipped.
"""

import json
import sys
from pathlib import Path

import numpy as np


def same(a: Path, b: Path) -> bool:
    if a.read_bytes() == b.read_bytes():
        return True
    if a.suffix == ".json":
        ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
        if ja.get("tool") == "fr-qc":
            where = ("folder", "inputs")
            return {k: v for k, v in ja.items() if k not in where} == {k: v for k, v in jb.items() if k not in where}
        return "created" in ja and ja.get("result_parameters") == jb.get("result_parameters")
    if a.suffix == ".mat":
        from scipy.io import loadmat

        ma, mb = loadmat(a), loadmat(b)
        keys = {k for k in ma if not k.startswith("__")}
        return keys == {k for k in mb if not k.startswith("__")} and all(np.array_equal(ma[k], mb[k]) for k in keys)
    return False


def files(root: Path) -> set:
    """The outputs under a session root: every file below it but the inputs beside session.toml."""
    return {p.relative_to(root) for p in root.rglob("*")
            if p.is_file() and p.parent != root and ".frkit" not in p.parts and "logs" not in p.parts}


def main(a, b) -> int:
    a, b = Path(a), Path(b)
    fa, fb = files(a), files(b)
    bad = sorted(str(p) for p in fa ^ fb)
    bad += sorted(str(p) for p in fa & fb if not same(a / p, b / p))
    print(f"compared {len(fa & fb)} files: " + ("all equal" if not bad else "differ: " + ", ".join(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
