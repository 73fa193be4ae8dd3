"""Time chunks on one machine: `make -j2 all` with one recording as 1 chunk and as 2 chunks, per recording length.

    .venv/bin/python bench/chunk_scaling.py [--frames 800 2000] [--size 256] [--quality balanced]
                                            [--buffer 400] [--reference-frames 0:100] [--timeline]
                                            [--one-worker-only]

One recording, so any speed-up comes from its chunks running side by side. Each task runs with
n_workers = 1 (one core per task, as a cluster array task with --cpus-per-task=1), but a chunked
recording's reference step, which every chunk waits for, runs with its chunks' threads
(frkit.session.chunkrules.reference_workers). The unchunked run with all cores (n_workers = 0) is
what a user has today on one machine; "2 chunks, all" shows what threads on top of chunks do.

Per configuration it prints the wall time of `make -j2 all` (stages 1-3 and qc: the same work
after stage 1 in every configuration) and of its stage 1 (until compensate.json), each with its
speed-up over 1 chunk with 1 worker, and, for chunked runs, where stage 1's time went: each step's
process from make's start to its end (a SHELL wrapper logs every recipe), the time inside the step
(its record; the rest is starting Python, imports, loading the numba cache), each process's CPU
seconds (robust on a busy machine, unlike the wall times) and make's gaps. The
reference step and the join are a fixed cost, so the speed-up grows with the recording's length.
Checks the chunked compensated.HDF5 is the unchunked one's bytes.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py

from frkit.synth import SyntheticSession

BIN = Path(sys.executable).parent
#: (name, chunks, n_workers); the first is the baseline of every speed-up
CONFIGS = (("1 chunk, 1 worker", 1, 1), ("2 chunks, 1 worker", 2, 1), ("1 chunk, all", 1, 0),
           ("2 chunks, all", 2, 0))
#: make's SHELL: runs the recipe with /bin/sh and logs "start end user sys recipe" (epoch seconds; the
#: recipe's CPU time from the shell's `times`, not in a subshell: a forked one starts its counts at 0)
TIMING_SHELL = """#!/bin/sh
s=$(date +%s.%N)
/bin/sh "$@"
rc=$?
e=$(date +%s.%N)
times > "$FRKIT_BENCH_TIMELINE.$$"
c=$(tail -n 1 "$FRKIT_BENCH_TIMELINE.$$")
rm -f "$FRKIT_BENCH_TIMELINE.$$"
printf '%s %s %s %s\\n' "$s" "$e" "$c" "$2" >> "$FRKIT_BENCH_TIMELINE"
exit $rc
"""


def write_recordings(folder: Path, lengths: list[int], size: int) -> dict[int, Path]:
    """One synthetic recording per length; the shorter ones are the first frames of the longest."""
    longest = folder / f"rec_{max(lengths)}.h5"
    s = SyntheticSession(size, size, max(lengths), seed=5, shift_px=2.0, warp_px=0.8)
    with h5py.File(longest, "w") as f:
        d = f.create_dataset("mov", (max(lengths), size, size), dtype="uint16")
        for a in range(0, max(lengths), 200):
            b = min(max(lengths), a + 200)
            d[a:b] = s.frames(a, b)[..., 0]
    paths = {max(lengths): longest}
    with h5py.File(longest, "r") as src:
        for n in lengths:
            if n != max(lengths):
                paths[n] = folder / f"rec_{n}.h5"
                with h5py.File(paths[n], "w") as f:
                    f["mov"] = src["mov"][:n]
    return paths


def warm_up(folder: Path, quality: str, buffer: int, shell: Path) -> None:
    """One untimed chunked session on a tiny recording (same dtype): numba compiles its kernels on a cold cache
    (after an install or a kernel change, ~9 s of CPU here), which would otherwise land in the first timing."""
    rec = folder / "warm-up.h5"
    with h5py.File(rec, "w") as f:
        f["mov"] = SyntheticSession(64, 64, 60, seed=1).frames()[..., 0].astype("uint16")
    run(session(folder / "warm-up", rec, quality, 30, 1, buffer, "0:20"), shell)
    shutil.rmtree(folder / "warm-up")


def session(root: Path, recording: Path, quality: str, chunk_frames: int, workers: int, buffer: int,
            reference_frames: str) -> Path:
    root.mkdir(parents=True)
    os.link(recording, root / "rec.h5")
    cfg = root / "session.toml"
    cfg.write_text(f'root = "."\npattern = "rec.h5"\nstage1_quality_setting = "{quality}"\nn_workers = {workers}\n'
                   f'chunk_frames = {chunk_frames}\nalign_output_format = "HDF5"\n'
                   f'[flow_options]\nbuffer_size = {buffer}\nreference_frames = "{reference_frames}"\n')
    return cfg


def step_name(recipe: str) -> str:
    if "--reference-only" in recipe:
        return "reference step"
    m = re.search(r"--frames (\d+):(\d+)", recipe)
    if m:
        return f"chunk {m[1]}:{m[2]}"
    if "session join" in recipe:
        return "join"
    return recipe.split()[0] + (" (stage 1)" if recipe.startswith("fr-compensate") else "")


def cpu_seconds(times: str) -> float:
    """``0m1.5s`` (the shell's ``times``) in seconds."""
    m = re.fullmatch(r"(\d+)m([\d.]+)s", times)
    return 60 * int(m[1]) + float(m[2])


def run(cfg: Path, shell: Path) -> tuple[float, list[tuple[str, float, float, float]]]:
    """``(wall time of make -j2 all, [(step, start, end seconds after make's start, CPU seconds)]``."""
    log = cfg.parent / "timeline.txt"
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", FRKIT_BENCH_TIMELINE=str(log))
    mk = subprocess.run([sys.executable, "-m", "frkit.session", "plan", str(cfg)], env=env, check=True,
                        capture_output=True, text=True).stdout.strip()
    t0, wall0 = time.perf_counter(), time.time()
    subprocess.run(["make", "-s", "-j2", "-f", mk, f"SHELL={shell}", "all"], env=env, check=True,
                   capture_output=True)
    wall = time.perf_counter() - t0
    steps = []
    for line in log.read_text().splitlines():
        start, end, user, system, recipe = line.split(" ", 4)
        steps.append((step_name(recipe), float(start) - wall0, float(end) - wall0,
                      cpu_seconds(user) + cpu_seconds(system)))
    return wall, sorted(steps, key=lambda s: s[1])


STAGE1_STEPS = ("reference step", "join", "fr-compensate (stage 1)")  # and "chunk START:STOP"


def stage1_end(steps) -> float:
    return max(end for name, _, end, _ in steps if name in STAGE1_STEPS)


def explain(steps, record: dict) -> list[str]:
    """Where a chunked stage 1 went: each step's process (make's view) and the time inside it (its record)."""
    inside = record["summary"]["steps"]
    rows = []
    for name, start, end, cpu in steps:
        if name == "reference step":
            s = inside["reference"]
            ss = s["stage_seconds"]
            chain = ss.get("flow", 0) + ss.get("preprocess", 0) + ss.get("initialization", 0)  # first + carried
            detail = (f"inside {s['seconds']:.2f} s ({s['engine']}: reference {ss.get('reference', 0):.2f}, "
                      f"initialization chain {chain:.2f})")
        elif name.startswith("chunk "):
            s = next(c for c in inside["chunks"] if f"chunk {c['frames'][0]}:{c['frames'][1]}" == name)
            ss = s["stage_seconds"]
            detail = (f"inside {s['seconds']:.2f} s ({s['engine']}: flow {ss.get('flow', 0):.2f}, "
                      f"warp {ss.get('warp', 0):.2f}, preprocess {ss.get('preprocess', 0):.2f}, "
                      f"read {ss.get('read', 0):.2f}, write {ss.get('write', 0):.2f})")
        elif name == "join":
            detail = f"inside {inside['join']:.2f} s"
        else:
            continue
        rows.append(f"      {name:<18} {start:6.1f} -> {end:6.1f} s  process {end - start:6.2f} s "
                    f"(CPU {cpu:6.2f} s), {detail}")
    ref = next((s, e) for n, s, e, _ in steps if n == "reference step")
    chunks = [(s, e) for n, s, e, _ in steps if n.startswith("chunk ")]
    join = next((s, e) for n, s, e, _ in steps if n == "join")
    busy = (ref[1] - ref[0]) + (max(e for _, e in chunks) - min(s for s, _ in chunks)) + (join[1] - join[0])
    rows.append(f"      serial: reference step {ref[1] - ref[0]:.2f} s + join {join[1] - join[0]:.2f} s; "
                f"make's gaps and waits {stage1_end(steps) - busy:.2f} s")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[800, 2000])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--quality", default="balanced")
    ap.add_argument("--buffer", type=int, default=400)
    ap.add_argument("--reference-frames", default="0:100")
    ap.add_argument("--timeline", action="store_true", help="also print every recipe's start and end")
    ap.add_argument("--one-worker-only", action="store_true",
                    help="only the n_workers = 1 configurations (1 and 2 chunks): half the time, for long recordings")
    a = ap.parse_args()
    configs = [c for c in CONFIGS if c[2] == 1 or not a.one_worker_only]
    print(f"one recording {a.size}x{a.size}, quality {a.quality}, buffer_size {a.buffer}, "
          f"reference_frames {a.reference_frames}; make -j2 all; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shell = tmp / "timing-shell"
        shell.write_text(TIMING_SHELL)
        shell.chmod(0o755)
        recordings = write_recordings(tmp, a.frames, a.size)
        warm_up(tmp, a.quality, a.buffer, shell)
        for n in a.frames:
            print(f"\n{n} frames ({-(-n // 2)} per chunk)")
            print(f"  {'configuration':<20} {'make -j2 all (s)':>16} {'speed-up':>8} {'stage 1 (s)':>11} "
                  f"{'speed-up':>8} {'stage 1 CPU (s)':>15}")
            base, videos = None, {}
            for name, chunks, workers in configs:
                root = tmp / f"{n}-{chunks}-{workers}"
                cfg = session(root, recordings[n], a.quality, 0 if chunks == 1 else -(-n // 2), workers,
                              a.buffer, a.reference_frames)
                wall, steps = run(cfg, shell)
                stage1 = stage1_end(steps)
                base = base or (wall, stage1)
                cpu1 = sum(cpu for step, *_, cpu in steps if step in STAGE1_STEPS or step.startswith("chunk "))
                print(f"  {name:<20} {wall:>16.1f} {base[0] / wall:>7.2f}x {stage1:>11.1f} {base[1] / stage1:>7.2f}x "
                      f"{cpu1:>15.1f}", flush=True)
                folder = root / "compensated_outputs" / "rec"
                if chunks > 1:
                    print("\n".join(explain(steps, json.loads((folder / "compensate.json").read_text()))))
                if a.timeline:
                    for step, start, end, cpu in steps:
                        print(f"      {step:<26} {start:6.1f} -> {end:6.1f} s  (CPU {cpu:6.2f} s)")
                videos[name] = hashlib.sha256((folder / "compensated.HDF5").read_bytes()).hexdigest()
                shutil.rmtree(root)
            same = len(set(videos.values())) == 1
            print(f"  compensated.HDF5 of every configuration is the same bytes: {same}")
            print(f"  ideal for 2 chunks on 2 cores: stage 1 {base[1] / 2:.1f} s (2.00x); "
                  f"load average {os.getloadavg()[0]:.1f} now", flush=True)


if __name__ == "__main__":
    main()
