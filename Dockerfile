# syntax=docker/dockerfile:1
# frkit: every fr-* tool on PATH, for the CPU and (with --gpus / apptainer --nv)
# the GPU: CuPy for CUDA 12 with its CUDA libraries from PyPI, so any base image
# works; no CUDA base image is needed (BASE_IMAGE may still be one).
#
#   buildah bud --isolation chroot --storage-driver vfs \
#       --build-arg BASE_IMAGE=localhost/frkit-base:bookworm \
#       --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt -t frkit .
# (`make image` does this; containers/make-base.sh makes the base from Debian packages.)

ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
ARG DEBIAN_FRONTEND=noninteractive
# python3 with venv (and make, for the session rules) when the base lacks them
RUN if ! python3 -c "import venv, ensurepip" 2>/dev/null || ! command -v make >/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends python3 python3-venv make ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi
COPY pyproject.toml README.md /src/
COPY lib /src/lib
COPY cmd /src/cmd
# The host's CA bundle, when given as a build secret, is used for pip only and
# never lands in an image layer.
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    python3 -m venv /opt/frkit \
    && /opt/frkit/bin/pip install --no-cache-dir --disable-pip-version-check "/src[gpu]" \
    && /opt/frkit/bin/python -m compileall -q /opt/frkit/lib

FROM ${BASE_IMAGE}
ARG DEBIAN_FRONTEND=noninteractive
ARG VERSION=0.0.0
LABEL org.opencontainers.image.title="frkit" \
      org.opencontainers.image.description="Flow-Registration motion correction for 2-photon microscopy (fr-* tools)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"
RUN if ! command -v python3 >/dev/null || ! command -v make >/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends python3 make \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && (id frkit >/dev/null 2>&1 || useradd --create-home --uid 1000 --shell /bin/sh frkit)
COPY --from=build /opt/frkit /opt/frkit
# Caches must be writable (the image is read-only under Apptainer, which sets
# them under $HOME instead, see Apptainer.def). Each fr-* tool runs frames in
# its own threads (--workers, default: the CPUs the job may use), so BLAS and
# OpenMP pools stay at one thread to avoid over-subscription.
ENV PATH=/opt/frkit/bin:$PATH \
    NUMBA_CACHE_DIR=/tmp/frkit-cache/numba \
    CUPY_CACHE_DIR=/tmp/frkit-cache/cupy \
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMEXPR_NUM_THREADS=1 \
    PYTHONDONTWRITEBYTECODE=1
USER frkit
WORKDIR /home/frkit
CMD ["fr-compensate", "--help"]
