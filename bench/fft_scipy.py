#!/usr/bin/env python3
"""scipy.fft / numpy.fft peers of `bragg bench fft`: median ms of a forward + inverse
3D complex64 FFT pair. Usage: fft_scipy.py SIZE REPEATS"""
import json, sys, time
import numpy as np

n = int(sys.argv[1]) if len(sys.argv) > 1 else 128
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 20
a = (np.arange(n ** 3) % 17 * 0.1).astype(np.complex64).reshape(n, n, n)

def bench(fn):
    ts = []
    for r in range(repeats + 2):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return float(np.median(ts[2:])) * 1e3

out = {"bench": "fft_python", "size": n}
try:
    import scipy, scipy.fft as sf
    out["scipy"] = scipy.__version__
    out["scipy_1_ms"] = bench(lambda: sf.ifftn(sf.fftn(a, workers=1, overwrite_x=False), workers=1))
    out["scipy_all_ms"] = bench(lambda: sf.ifftn(sf.fftn(a, workers=-1), workers=-1))
except ImportError:
    out["scipy"] = None
out["numpy"] = np.__version__
out["numpy_ms"] = bench(lambda: np.fft.ifftn(np.fft.fftn(a)))
print(json.dumps(out))
