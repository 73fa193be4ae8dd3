#!/bin/bash
# Submit a frkit session to SLURM: a stage-1 array (one task per recording, at
# most K at once) and a dependent stages-2-3 job.
#   containers/slurm/submit.sh session.toml [K]
set -euo pipefail
CONFIG=${1:?usage: submit.sh SESSION_TOML [MAX_PARALLEL]}
K=${2:-8}
SIF=${FRKIT_SIF:-frkit.sif}
BINDS=${FRKIT_BINDS:--B /data:/data}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p logs
# check the whole session first (sizes, center, stems); fails here, not in the array
apptainer exec $BINDS "$SIF" python3 -m frkit.session plan "$CONFIG" >/dev/null
N=$(apptainer exec $BINDS "$SIF" python3 -m frkit.session list "$CONFIG" | wc -l)
stage1=$(sbatch --parsable --array=1-"$N"%"$K" "$HERE/stage1.sbatch" "$CONFIG")
stages23=$(sbatch --parsable --dependency=afterok:"$stage1" "$HERE/stages23.sbatch" "$CONFIG")
echo "stage 1: job $stage1 ($N tasks, $K at a time); stages 2-3: job $stages23 (after $stage1)"
