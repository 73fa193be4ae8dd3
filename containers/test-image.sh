#!/bin/sh
# Smoke-test a built image with buildah (no Docker daemon): the tools answer
# --help, and the demo session runs inside the container, as the non-root
# user, with the expected outputs.
#   containers/test-image.sh localhost/frkit:VERSION
set -eu
IMAGE=${1:?usage: test-image.sh IMAGE}
B="buildah --storage-driver ${STORAGE_DRIVER:-vfs}"
ctr=$($B from --quiet "$IMAGE")
trap '$B rm "$ctr" >/dev/null 2>&1 || true' EXIT
run() { $B run --isolation chroot "$ctr" -- "$@"; }

run sh -c 'id -un' | grep -qx frkit || { echo "container-test: not running as the frkit user" >&2; exit 1; }
for t in fr-compensate fr-average fr-align fr-mask fr-reproject; do
    run "$t" --help | grep -q "Usage:" || { echo "container-test: $t --help failed" >&2; exit 1; }
done
run fr-compensate --device cuda /nonexistent -o /tmp/x 2>/dev/null && { echo "container-test: bad input accepted" >&2; exit 1; }
run sh -c '
    set -e
    d=/tmp/demo
    python3 -m frkit.demo session $d --frames 40
    mk=$(python3 -m frkit.session plan $d/session.toml)
    make --no-print-directory -f "$mk" -j 2 all
    python3 -m frkit.demo summary $d/session.toml
    for f in final_results/final_valid_idx.npz final_results/final_valid_idx.mat final_results/final_valid_idx.png \
             final_results/status.json compensated_outputs/rec_1/compensated.HDF5 compensated_outputs/rec_1/idx.hdf \
             compensated_outputs/rec_3/w_to_reference.npz final_results/aligned_rec_2.hdf5; do
        test -s "$d/$f" || { echo "missing $f" >&2; exit 1; }
    done
    python3 -c "import numpy as np; z = np.load(\"$d/final_results/final_valid_idx.npz\"); \
        assert 0.5 < z[\"final_valid\"].mean() <= 1, z[\"final_valid\"].mean(); print(\"mask ok\")"
'
echo "container-test: passed ($IMAGE)"
