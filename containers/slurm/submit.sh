#!/bin/bash
# Submit a frkit session to SLURM: the stage-1 array (one task per recording, or per (recording,
# time chunk) pair with chunk_frames, after a reference array), at most K tasks at once, and a
# dependent stages-2-3 job.
#   containers/slurm/submit.sh session.toml [K [TASKS]]
# TASKS (e.g. 3 or 3,5): submit only these stage-1 tasks (a rerun of failed ones; the shared
# references must exist) and the stages-2-3 job after them.
# FRKIT_SBATCH_ARGS: extra sbatch options for every job (e.g. "--cpus-per-task=2 --mem=4G").
# FRKIT_SIF: the Apptainer image; without it (and without ./frkit.sif) the tools on PATH are used.
set -euo pipefail
CONFIG=${1:?usage: submit.sh SESSION_TOML [MAX_PARALLEL [TASKS]]}
K=${2:-8}
TASKS=${3:-}
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -n "${FRKIT_SIF:-}" ] || { [ -f frkit.sif ] && command -v apptainer >/dev/null; }; then
    RUN=(apptainer exec ${FRKIT_BINDS:--B /data:/data} "${FRKIT_SIF:-frkit.sif}")
else
    RUN=()
fi
read -r -a ARGS <<<"${FRKIT_SBATCH_ARGS:-}"
mkdir -p logs
# check the whole session first (sizes, center, stems); fails here, not in the array
"${RUN[@]}" python3 -m frkit.session plan "$CONFIG" >/dev/null
N=$("${RUN[@]}" python3 -m frkit.session count "$CONFIG" tasks)
R=$("${RUN[@]}" python3 -m frkit.session count "$CONFIG" references)
after=()
if [ -z "$TASKS" ] && [ "$R" -gt 0 ]; then
    ref=$(sbatch --parsable "${ARGS[@]}" --array=1-"$R"%"$K" "$HERE/stage1.sbatch" "$CONFIG" reference)
    after=(--dependency=afterok:"$ref" --kill-on-invalid-dep=yes)
    echo "references: job $ref ($R tasks)"
fi
stage1=$(sbatch --parsable "${ARGS[@]}" "${after[@]}" --array="${TASKS:-1-$N}"%"$K" "$HERE/stage1.sbatch" "$CONFIG")
stages23=$(sbatch --parsable "${ARGS[@]}" --dependency=afterok:"$stage1" --kill-on-invalid-dep=yes \
           "$HERE/stages23.sbatch" "$CONFIG")
echo "stage 1: job $stage1 (tasks ${TASKS:-1-$N} of $N, $K at a time); stages 2-3: job $stages23 (after $stage1)"
