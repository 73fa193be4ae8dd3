#!/bin/bash
# SGE: stages 2-3 (and the join of time chunks) after the stage-1 array: qsub -hold_jid <job> ...
#$ -N frkit-stages23
#$ -cwd
#$ -o logs/
#$ -e logs/
#$ -pe smp 8
set -euo pipefail
if [ -n "${FRKIT_SIF:-}" ] || { [ -f frkit.sif ] && command -v apptainer >/dev/null; }; then
    apptainer run ${FRKIT_BINDS:--B /data:/data} "${FRKIT_SIF:-frkit.sif}" session "${1:?session.toml}" -j "${NSLOTS:-1}" all
else
    make --no-print-directory -f "$(python3 -m frkit.session plan "${1:?session.toml}")" -j "${NSLOTS:-1}" all
fi
