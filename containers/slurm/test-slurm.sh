#!/bin/bash
# make slurm-test: a session through the project's SLURM scripts on a real (one-node, local)
# SLURM cluster, compared byte for byte with `make session`; then one stage-1 task is cancelled
# mid-run, only it is resubmitted, and nothing partial may have been adopted.
# Needs root (containers/slurm/local-cluster.sh) and frkit's tools and python3 on PATH (or FRKIT_SIF).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${FRKIT_SLURM_TEST_DIR:-/tmp/frkit-slurm-test}
export FRKIT_SBATCH_ARGS=${FRKIT_SBATCH_ARGS:---cpus-per-task=1 --mem=1G --time=00:20:00}
now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }
fail() { echo "slurm-test: FAILED: $*" >&2; exit 1; }

t0=$(now)
eval "$("$HERE/local-cluster.sh" start)"
trap '"$HERE/local-cluster.sh" stop' EXIT
echo "slurm-test: one-node cluster up in $(secs "$t0" "$(now)") s ($(sinfo -h -o '%n %c CPUs %T'))"

# a session of two recordings, two time chunks each: 4 stage-1 tasks after 2 reference tasks
rm -rf "$WORK"; mkdir -p "$WORK/inputs"
python3 - "$WORK/inputs" <<'PY'
import sys, h5py
from frkit.synth import SyntheticSession, session_views
views = session_views(2, 64, 64, seed=2, max_shift=4.0, max_rotation=1.0, elastic_px=1.0)
for i, v in enumerate(views):
    s = SyntheticSession(64, 64, 120, seed=2, shift_px=1.5, warp_px=0.5, view=v, motion_seed=20 + i, margin=32)
    with h5py.File(f"{sys.argv[1]}/rec_{i + 1}.h5", "w") as f:
        f["mov"] = s.frames()[..., 0]
PY
session() {  # session FOLDER CHUNK_FRAMES: the inputs and a session.toml in FOLDER
    mkdir -p "$1"; cp "$WORK"/inputs/*.h5 "$1"/
    printf 'root = "."\npattern = "rec_*.h5"\nstage1_quality_setting = "balanced"\nalign_output_format = "HDF5"\n%s\n%s\n%s\n' \
        'iterations_between = 30' "chunk_frames = $2" $'[flow_options]\nbuffer_size = 30\nsave_w = true' >"$1/session.toml"
}
state() { scontrol show job "$1" -o 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | sort | uniq -c | tr '\n' ' '; }
wait_gone() {  # wait until no task of these jobs is pending or running
    for _ in $(seq 1800); do
        [ -z "$(squeue -h -j "$(IFS=,; echo "$*")" 2>/dev/null)" ] && return 0
        sleep 0.2
    done
    fail "jobs $* still queued after 6 minutes"
}
job_ids() { sed -n 's/.*\(references\|stage 1\): job \([0-9]*\).*/\2/p' | tr '\n' ' '; }

# every run happens in $WORK/run (the outputs name their paths), then moves aside
# the reference: make session, whole recordings (no chunks)
t=$(now)
session "$WORK/run" 0
mk=$(python3 -m frkit.session plan "$WORK/run/session.toml")
make --no-print-directory -s -f "$mk" -j "$(nproc)" all >/dev/null 2>&1
mv "$WORK/run" "$WORK/make"
echo "slurm-test: make session (whole recordings) took $(secs "$t" "$(now)") s"

# 1. the whole session through SLURM, in time chunks
t=$(now)
session "$WORK/run" 60
cd "$WORK/run"
python3 -m frkit.session list session.toml
out=$("$HERE/submit.sh" session.toml 8); echo "$out"
s23=$(echo "$out" | sed -n 's/.*stages 2-3: job \([0-9]*\).*/\1/p')
# shellcheck disable=SC2046
wait_gone $(echo "$out" | job_ids) "$s23"
[ "$(state "$s23")" = "      1 COMPLETED " ] || { cat logs/*.err >&2; fail "stages 2-3 job $s23: $(state "$s23")"; }
echo "slurm-test: SLURM session (2 references, 4 chunk tasks, stages 2-3) took $(secs "$t" "$(now)") s"
python3 "$HERE/compare-outputs.py" "$WORK/make" "$WORK/run" || fail "SLURM outputs differ from make session's"
cd "$WORK" && mv "$WORK/run" "$WORK/slurm"

# 2. cancel stage-1 task 3 (rec_2, frames 0:60) mid-run, resubmit only it
t=$(now)
session "$WORK/run" 60
cd "$WORK/run"
out=$("$HERE/submit.sh" session.toml 8); echo "$out"
read -r ref s1 <<<"$(echo "$out" | job_ids)"
s23=$(echo "$out" | sed -n 's/.*stages 2-3: job \([0-9]*\).*/\1/p')
chunk=compensated_outputs/rec_2/chunks/frames_00000000-00000060
for _ in $(seq 3000); do ls "$chunk"/*.partial >/dev/null 2>&1 && break; sleep 0.02; done
scancel "${s1}_3"
wait_gone "$ref" "$s1" "$s23"
echo "slurm-test: after scancel ${s1}_3: stage 1 $(state "$s1")| stages 2-3 $(state "$s23")"
scontrol show job "${s1}_3" -o | grep -q "JobState=CANCELLED" || fail "task 3 was not cancelled mid-run (too fast?)"
[ ! -e "$chunk/chunk.json" ] || fail "the cancelled chunk has a record"
[ ! -e compensated_outputs/rec_2/compensate.json ] || fail "rec_2 has a stage-1 record after a cancelled chunk"
if python3 -m frkit.session join compensated_outputs/rec_2 2>join.err; then fail "join adopted a partial chunk"; fi
echo "slurm-test: join refuses: $(cat join.err)"
out=$("$HERE/submit.sh" session.toml 8 3); echo "$out"
s1=$(echo "$out" | job_ids)
s23=$(echo "$out" | sed -n 's/.*stages 2-3: job \([0-9]*\).*/\1/p')
wait_gone "$s1" "$s23"
[ "$(state "$s23")" = "      1 COMPLETED " ] || { cat logs/*.err >&2; fail "stages 2-3 job $s23: $(state "$s23")"; }
echo "slurm-test: cancel + resubmit of task 3 took $(secs "$t" "$(now)") s"
python3 "$HERE/compare-outputs.py" "$WORK/make" "$WORK/run" || fail "outputs after the resubmitted task differ"
echo "slurm-test: passed in $(secs "$t0" "$(now)") s"
