#!/bin/bash
# SGE: stage 1 as an array job, one recording per task (SGE_TASK_ID is 1-based).
#   qsub -t 1-N -tc 8 containers/sge/stage1.sh session.toml
#   qsub -hold_jid <stage-1 job id> containers/sge/stages23.sh session.toml
#$ -N frkit-stage1
#$ -cwd
#$ -o logs/
#$ -e logs/
#$ -pe smp 8
set -euo pipefail
apptainer exec ${FRKIT_BINDS:--B /data:/data} "${FRKIT_SIF:-frkit.sif}" \
    fr-compensate --config "${1:?session.toml}" --array-task --index-base 1 -q
