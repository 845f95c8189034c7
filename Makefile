# BraggKit — `make demo` runs the main job, `make test` runs the test suite.
# Both install what they need first (Debian packages, only when missing).

SWIFT      ?= swift
# One configuration for the program and the tests (release speed, @testable imports),
# so `make test` after `make build` rebuilds nothing.
SWIFTFLAGS ?= -c release -Xswiftc -enable-testing
# The release flags of Package.swift (-fno-math-errno, -march=x86-64-v3: AVX2/FMA), which
# the manifest declares only when BRAGG_NATIVE is set, on x86_64. `BRAGG_NATIVE=0 make ...`
# builds the portable way (as a dependency or on aarch64); switching rebuilds everything.
export BRAGG_NATIVE ?= 1
BIN        := $(shell $(SWIFT) build $(SWIFTFLAGS) --show-bin-path 2>/dev/null)/bragg
# hdf5-filter-plugin (LZ4, BZip2) and bitshuffle (HDF5 filter 32008): plugins that decode
# the Eiger files of PETRA III P10 (found by HDF5 in /usr/lib/<arch>/hdf5/serial/plugins).
# Open MPI (libopenmpi-dev to build, openmpi-bin for mpirun): runs and scans across ranks (#24).
DEBS       := libfftw3-dev libopenblas-dev libhdf5-dev libpng-dev zlib1g-dev libtiff-dev pkg-config \
              hdf5-filter-plugin bitshuffle libopenmpi-dev openmpi-bin
# The tests cross-check files with numpy, h5py, tifffile and the VTK reader, and the
# diffractometer geometry with xrayutilities (Debian's python3).
TEST_DEBS  := python3-numpy python3-h5py python3-vtk9 python3-tifffile python3-xrayutilities
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build test demo bench clean check-report fuzz example

all: build

# Debian packages, installed only when one is missing (quick the second time).
deps:
	@missing=""; for p in $(DEBS) $(EXTRA_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  ( DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing || \
	    ( DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get --fix-broken install -y -qq && \
	      DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing ) ); \
	fi

build: deps
	$(SWIFT) build $(SWIFTFLAGS) --product bragg

test: EXTRA_DEBS = $(TEST_DEBS)
test: deps
	$(SWIFT) build $(SWIFTFLAGS) --build-tests
	$(SWIFT) test $(SWIFTFLAGS) --skip-build --disable-swift-testing

demo: build
	$(BIN) demo --out demo-out --force

# Opens demo-out/report.html in headless Chromium (installed from Debian if missing),
# fails on a broken image, and keeps a screenshot in docs/.
check-report: demo
	@command -v chromium >/dev/null 2>&1 || ( $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium )
	bash bench/check_report.sh demo-out/report.html docs/report-screenshot.png

bench: build
	bash bench/run.sh

# libFuzzer targets, one per parser (Fuzz/, #22): built with --sanitize=fuzzer in .build-fuzz,
# each run for FUZZ_SECONDS (default 30) from its seed corpus; fails on a crash, hang or OOM.
fuzz: deps
	bash Fuzz/run.sh

# A separate package that uses BraggKit as a library by path (Examples/UseBraggKit, #23):
# `bragg simulate` makes a pattern, the example phases it, analyses it and writes the results.
# It builds BraggKit anew in its own .build, in debug (the cheaper build; no release flags),
# without BRAGG_NATIVE, as a package that depends on BraggKit would.
EXAMPLE_OUT ?= /tmp/braggkit-example
example: build
	mkdir -p $(EXAMPLE_OUT)
	$(BIN) simulate crystal --size 32 --seed 3 --out $(EXAMPLE_OUT)/pattern.cxi --force -q
	cd Examples/UseBraggKit && BRAGG_NATIVE=0 $(SWIFT) run $(EXAMPLE_FLAGS) UseBraggKit $(EXAMPLE_OUT)/pattern.cxi $(EXAMPLE_OUT)
	head -3 $(EXAMPLE_OUT)/table.csv

clean:
	rm -rf .build .build-fuzz demo-out Examples/UseBraggKit/.build
