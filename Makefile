# frkit: `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

CONFIG ?= session.toml
DEMO   := demo/out/session

VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' lib/frkit/_version.py)
IMAGE  ?= localhost/frkit:$(VERSION)
BASE_IMAGE ?= localhost/frkit-base:bookworm
BUILDAH := buildah --storage-driver $(or $(STORAGE_DRIVER),vfs)
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
comma  := ,

.PHONY: help install demo test bench clean session stage1 stage2 stage3 qc image sif container-test slurm-test

help:
	@echo "make demo     install, then run the session pipeline on a built-in synthetic example"
	@echo "make session CONFIG=session.toml   run stages 1-3 of a session (-j N: recordings in parallel)"
	@echo "make stage1|stage2|stage3|qc CONFIG=session.toml   one stage (and what it needs); qc: fr-qc's report"
	@echo "make test     install, then run the test suite"
	@echo "make bench    side-by-side benchmark against pyflowreg (installs it in bench/.peer-venv)"
	@echo "make image    build the Docker/OCI image with buildah ($(IMAGE)); make sif: Apptainer image"
	@echo "make container-test   build the image, run the tools and the demo session inside it"
	@echo "make slurm-test   (root) a one-node SLURM cluster here; a chunked session through containers/slurm"
	@echo "make clean    remove the virtual environment and demo outputs"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

install: $(STAMP)

demo: $(STAMP)
	@echo "== synthetic session (3 recordings, motion inside and between them): $(DEMO)"
	@$(BIN)/python -m frkit.demo session $(DEMO)
	@$(MAKE) --no-print-directory session CONFIG=$(DEMO)/session.toml
	@$(BIN)/python -m frkit.demo summary $(DEMO)/session.toml

# The session's rules are generated from CONFIG (and checked) on every run;
# make then redoes only what is missing or out of date.
session stage1 stage2 stage3 qc: $(STAMP)
	@mk=$$($(BIN)/python -m frkit.session plan $(CONFIG)) && \
	  PATH="$(abspath $(BIN)):$$PATH" $(MAKE) --no-print-directory -f "$$mk" $(if $(filter session,$@),all,$@)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/compensate_vs_pyflowreg.py

clean:
	rm -rf $(VENV) demo/out

# -- containers (buildah, no Docker daemon; see containers/README.md) ----------
image:
	@command -v buildah >/dev/null || { echo "make image: buildah is not installed (apt-get install buildah)" >&2; exit 2; }
	@case "$(BASE_IMAGE)" in localhost/frkit-base:*) containers/make-base.sh $(subst localhost/frkit-base:,,$(BASE_IMAGE));; esac
	$(BUILDAH) bud --isolation chroot --layers=false --build-arg BASE_IMAGE=$(BASE_IMAGE) \
	  --build-arg VERSION=$(VERSION) $(if $(wildcard $(CA_BUNDLE)),--secret id=ca$(comma)src=$(CA_BUNDLE)) \
	  -f Dockerfile -t $(IMAGE) .

sif: image
	@command -v apptainer >/dev/null || command -v singularity >/dev/null || \
	  { echo "make sif: apptainer (or singularity) is not installed; see https://apptainer.org" >&2; exit 2; }
	mkdir -p build && rm -f build/frkit-oci.tar
	$(BUILDAH) push $(IMAGE) oci-archive:build/frkit-oci.tar
	$$(command -v apptainer || command -v singularity) build --force frkit.sif Apptainer.def

# A real scheduler: containers/slurm/local-cluster.sh (Debian's slurm-wlm and munge), then a
# session through the project's SLURM scripts, compared byte for byte with make session's.
slurm-test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" containers/slurm/test-slurm.sh

container-test: image
	STORAGE_DRIVER=$(or $(STORAGE_DRIVER),vfs) containers/test-image.sh $(IMAGE)
