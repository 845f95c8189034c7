#!/usr/bin/env bash
# Times `bragg analyze` on six 128³ states against the numpy/scipy peer, same run.
# Usage: bash bench/analysis_series.sh [path/to/bragg] [size] [repeats]
set -euo pipefail
BRAGG=${1:-.build/release/bragg}
N=${2:-128}
REPS=${3:-3}
DIR=$(mktemp -d /tmp/bragg-analysis-bench.XXXX)
python3 "$(dirname "$0")/analysis_make_series.py" "$N" "$DIR"
G="--energy-kev 13.5 --two-theta 28.8 --distance 2.8 --pixel-um 55 --rocking-step 0.005"
for r in $(seq "$REPS"); do
  /usr/bin/time -f "bragg analyze wall %e s, peak RSS %M KiB" "$BRAGG" analyze "$DIR"/state{0,1,2,3,4,5}.npy \
    --labels "2.5V,3.0V,3.5V,4.0V,3.5Vd,3.0Vd" $G --keep-ramp --out "$DIR/out" --force -q 2>&1 | grep -E "wall|common support"
done
python3 "$(dirname "$0")/analysis_numpy.py" "$DIR" "$REPS"
rm -rf "$DIR"
