#!/bin/bash
#$ -N frkit-stages23
#$ -cwd
#$ -o logs/
#$ -e logs/
#$ -pe smp 8
set -euo pipefail
apptainer run ${FRKIT_BINDS:--B /data:/data} "${FRKIT_SIF:-frkit.sif}" session "${1:?session.toml}" -j "${NSLOTS:-1}" all
