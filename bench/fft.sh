#!/usr/bin/env bash
# FFT benchmark: BraggKit vs plain C calling FFTW (same flags, threads, wisdom) vs scipy/numpy,
# all in one run. Usage: bench/fft.sh [SIZE] [EFFORT]   (run `make build` first)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-128}; effort=${2:-measure}; reps=${REPEATS:-20}
bin=$(swift build -c release -Xswiftc -enable-testing --show-bin-path)/bragg
wisdom=${BRAGG_FFTW_WISDOM:-$HOME/.cache/braggkit/fftwf-wisdom}
cc -O2 bench/fft_c.c -o /tmp/bragg_fft_c -lfftw3f_threads -lfftw3f -lm -lpthread
cores=$(nproc)
for t in 1 $cores; do
  "$bin" bench fft --size "$n" --threads "$t" --fft-effort "$effort" --repeats "$reps" --json
  /tmp/bragg_fft_c "$n" "$t" "$effort" "$reps" "$wisdom"
done
python3 bench/fft_scipy.py "$n" "$reps"
