#!/usr/bin/env python3
"""Peer for `bragg bench phase`: one HIO iteration in numpy + scipy.fft (all cores as
workers), written the efficient numpy way (complex64, in-place where numpy allows).

Same iteration as BraggKit's engine: F = FFT(rho); P_M: F <- F * sqrt(I)/|F| on measured
pixels (masked pixels keep the model); rho' = IFFT(F); HIO: rho <- rho' in S,
rho - beta rho' outside.

Usage: python3 bench/phasing_hio.py --size 128 [--workers N] [--repeats 20]
Prints the median milliseconds per iteration.
"""
import argparse, time, os
import numpy as np
import scipy.fft as sfft

p = argparse.ArgumentParser()
p.add_argument("--size", type=int, default=128)
p.add_argument("--workers", type=int, default=-1)
p.add_argument("--repeats", type=int, default=20)
p.add_argument("--beta", type=float, default=0.9)
a = p.parse_args()
n = a.size
rng = np.random.default_rng(0)
shape = (n, n, n)
# A compact object and its pattern (same kind of data as the Swift bench).
z, y, x = np.ogrid[:n, :n, :n]
c = n // 2
obj = (((z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2) < (n / 6) ** 2).astype(np.complex64)
amp = np.abs(sfft.fftn(obj, workers=a.workers)).astype(np.float32)
mask = np.zeros(shape, bool)
mask[:, :2, :] = True                    # a few masked pixels
support = np.zeros(shape, bool)
support[c - n // 4:c + n // 4, c - n // 4:c + n // 4, c - n // 4:c + n // 4] = True
rho = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64) * support
measured = ~mask
beta = np.float32(a.beta)

def hio(rho):
    f = sfft.fftn(rho, workers=a.workers, overwrite_x=False)
    m = np.abs(f)
    np.maximum(m, np.float32(1e-30), out=m)
    g = np.where(measured, amp / m, np.float32(1)).astype(np.float32, copy=False)
    f *= g
    rp = sfft.ifftn(f, workers=a.workers, overwrite_x=True)
    out = rho - beta * rp
    np.copyto(out, rp, where=support)
    return out

for _ in range(2):
    rho = hio(rho)
times = []
for _ in range(a.repeats):
    t = time.perf_counter()
    rho = hio(rho)
    times.append(time.perf_counter() - t)
med = float(np.median(times)) * 1e3
w = a.workers if a.workers > 0 else os.cpu_count()
print(f"numpy/scipy HIO iteration {n}^3: {med:.3f} ms median of {a.repeats} ({w} workers, scipy {sfft.__name__})")
