#!/bin/bash
# SGE: stage 1 as an array job (SGE_TASK_ID is 1-based). The task table (ids, recording, frames):
#   python3 -m frkit.session list session.toml
# Without chunk_frames: one task per recording. With chunk_frames: first the shared references
# (one task per recording), then one task per (recording, time chunk) pair:
#   qsub -t 1-R -tc 8 containers/sge/stage1.sh session.toml reference      # R: count ... references
#   qsub -t 1-N -tc 8 -hold_jid <reference job> containers/sge/stage1.sh session.toml
#   qsub -hold_jid <stage-1 job id> containers/sge/stages23.sh session.toml
# FRKIT_SIF: the Apptainer image; without it (and without ./frkit.sif) the tools on PATH.
#$ -N frkit-stage1
#$ -cwd
#$ -o logs/
#$ -e logs/
#$ -pe smp 8
set -euo pipefail
EXTRA=(); [ "${2:-}" = reference ] && EXTRA=(--reference-only)
if [ -n "${FRKIT_SIF:-}" ] || { [ -f frkit.sif ] && command -v apptainer >/dev/null; }; then
    RUN=(apptainer exec ${FRKIT_BINDS:--B /data:/data} "${FRKIT_SIF:-frkit.sif}")
else
    RUN=()
fi
"${RUN[@]}" fr-compensate --config "${1:?session.toml}" --array-task --index-base 1 "${EXTRA[@]}" -q
