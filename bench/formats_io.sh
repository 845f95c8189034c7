#!/usr/bin/env bash
# Peak memory and time of reading a 1 GiB float32 array (256×1024×1024) with bragg,
# against h5py/numpy in the same run. Usage: bash bench/formats_io.sh [BRAGG] [WORKDIR]
# BRAGG defaults to the release build (.build/release/bragg); WORKDIR needs ~3.5 GB free.
set -euo pipefail
B=${1:-.build/release/bragg}
B=$(realpath "$B")
W=${2:-$(mktemp -d)}
mkdir -p "$W"; cd "$W"
T() { /usr/bin/time -f "$1: %e s, peak RSS %M kB" "${@:2}" > /dev/null; }
python3 - <<'PY'
import numpy as np
a = np.lib.format.open_memmap('big.npy', mode='w+', dtype=np.float32, shape=(256, 1024, 1024))
plane = (np.arange(1024 * 1024, dtype=np.float32).reshape(1024, 1024) % 1000)
for z in range(256): a[z] = plane + z
a.flush()
np.save('tiny.npy', np.zeros((2, 3, 4), np.float32))
PY
T "bragg info tiny.npy (baseline)" "$B" info tiny.npy
T "bragg convert npy -> h5 (no gzip)" "$B" convert big.npy big.h5:/entry/data/data --gzip 0 --force
T "bragg info h5 (min/max/mean/NaN/zeros)" "$B" info big.h5:/entry/data/data
T "bragg convert h5 -> npy" "$B" convert big.h5:/entry/data/data back.npy --force
cmp big.npy back.npy && echo "h5 -> npy: identical bytes"
T "bragg info npy" "$B" info big.npy
if python3 -c "import h5py" 2>/dev/null; then
  T "h5py read + numpy stats (peer)" python3 -c "
import h5py, numpy as np
a = h5py.File('big.h5', 'r')['/entry/data/data'][()]
print(a.min(), a.max(), a.mean(dtype=np.float64), np.isnan(a).sum(), (a == 0).sum())"
  python3 -c "
import h5py, numpy as np
a = np.load('big.npy', mmap_mode='r')
with h5py.File('bigz.h5', 'w') as f:
    f.create_dataset('data', data=a, chunks=(1, 256, 1024), compression='gzip', compression_opts=4)"
  T "bragg info h5 chunked+gzip" "$B" info bigz.h5:/data
  T "bragg convert h5 chunked+gzip -> npy" "$B" convert bigz.h5:/data backz.npy --force
  cmp big.npy backz.npy && echo "gzip h5 -> npy: identical bytes"
  T "h5py read chunked+gzip (peer)" python3 -c "import h5py; a = h5py.File('bigz.h5', 'r')['data'][()]"
fi
rm -f tiny.npy big.npy back.npy backz.npy big.h5 bigz.h5
