#!/bin/sh
# make demo: a synthetic recording with known motion, corrected by fr-compensate.
# Usage: sh demo/run.sh OUTDIR   (the fr-* tools and python must be on PATH)
set -eu
out=${1:-demo/out}
mkdir -p "$out"
echo "== writing a synthetic recording with known motion: $out/recording.h5"
python -m frkit.demo recording "$out/recording.h5" --frames 150 --size 192
echo "== fr-compensate $out/recording.h5 -o $out/recording --quality balanced --save-w"
fr-compensate "$out/recording.h5" -o "$out/recording" --quality balanced --save-w
python -m frkit.demo report "$out/recording.h5" "$out/recording"
