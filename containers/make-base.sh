#!/bin/sh
# Make a local base image from Debian packages, for builds that cannot reach a
# container registry (CI): debootstrap a minimal Debian with python3, venv, make
# and CA certificates, and commit it with buildah as localhost/frkit-base:<suite>.
#
#   containers/make-base.sh [SUITE] [MIRROR]       (root; needs debootstrap, buildah)
set -eu
SUITE=${1:-bookworm}
MIRROR=${2:-http://deb.debian.org/debian}
IMAGE=${BASE_IMAGE_NAME:-localhost/frkit-base:$SUITE}
STORAGE="--storage-driver ${STORAGE_DRIVER:-vfs}"

for tool in debootstrap buildah; do
    command -v "$tool" >/dev/null || { echo "make-base: $tool is not installed (apt-get install $tool)" >&2; exit 2; }
done
if buildah $STORAGE inspect --type image "$IMAGE" >/dev/null 2>&1; then
    echo "make-base: $IMAGE exists"; exit 0
fi
root=$(mktemp -d "${TMPDIR:-/var/tmp}/frkit-base.XXXXXX")
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,make,ca-certificates \
    "$SUITE" "$root" "$MIRROR" >/dev/null
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
ctr=$(buildah $STORAGE from scratch)
mnt=$(buildah $STORAGE mount "$ctr")
cp -a "$root"/. "$mnt"/
buildah $STORAGE umount "$ctr" >/dev/null
buildah $STORAGE config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 "$ctr"
buildah $STORAGE commit --quiet "$ctr" "$IMAGE" >/dev/null
buildah $STORAGE rm "$ctr" >/dev/null
echo "make-base: built $IMAGE"
