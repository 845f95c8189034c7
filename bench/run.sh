#!/usr/bin/env bash
# Runs every benchmark with its peer in the same session (release build first: make build).
# Each prints its own figures; bench/README.md records them with the conditions.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=$(swift build -c release -Xswiftc -enable-testing --show-bin-path)/bragg
echo "== FFT vs C+FFTW vs scipy";     bash bench/fft.sh 128 measure
echo "== HIO iteration";              "$bin" bench phase --size 128; python3 bench/phasing_hio.py --size 128 || true
echo "== simulation";                 "$bin" bench simulate; python3 bench/simulation_numpy.py || true
echo "== network step and inference"; "$bin" bench nn; python3 bench/nn_torch.py || true
echo "== preparation";                "$bin" bench prepare --scans 4
echo "== demo";                       /usr/bin/time -v "$bin" demo --out /tmp/bragg-bench-demo --force 2>&1 | grep -E "demo finished|Maximum resident|Elapsed"
