"""Peer for `bragg analyze`: the same series steps in numpy/scipy on the same files —
twin choice by amplitude correlation, registration (integer FFT peak + parabolic),
Fourier shift, phase-ramp removal from the complex field, majority common support,
Euclidean depth (scipy.ndimage.distance_transform_edt) and core-median global phase,
Δφ and the Gram-matrix PCA, strain along Q from complex-field differences, and trilinear
resampling (map_coordinates, order 1) of the complex object, Δφ and strain onto the lab
grid. Not done here (no numpy/scipy routine): quality-guided unwrapping, missing-density
inpainting, the erf edge fit — so the peer does less work than `bragg analyze`.
Prints the median wall time of the analysis (files already in memory)."""
import sys, time, glob
import numpy as np
from scipy import ndimage

files = sorted(glob.glob(sys.argv[1] + "/state*.npy"))
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
objs0 = [np.load(f) for f in files]
n = objs0[0].shape

def twin(v):
    idx = [(2 * (m // 2) - np.arange(m)) % m for m in v.shape]
    return np.conj(v[np.ix_(*idx)])

def register(mov, ref):
    c = np.abs(np.fft.ifftn(np.conj(np.fft.fftn(mov)) * np.fft.fftn(ref)))
    p = np.unravel_index(np.argmax(c), c.shape)
    sh = []
    for ax in range(3):
        lo = list(p); hi = list(p); lo[ax] = (p[ax] - 1) % n[ax]; hi[ax] = (p[ax] + 1) % n[ax]
        pm, p0, pp = c[tuple(lo)], c[p], c[tuple(hi)]
        d = pm - 2 * p0 + pp
        f = 0.5 * (pm - pp) / d if d < 0 else 0
        v = p[ax] + f
        sh.append(v - n[ax] if v > n[ax] / 2 else v)
    return sh, c.max() / np.sqrt((mov ** 2).sum() * (ref ** 2).sum())

def fshift(v, sh):
    f = np.fft.fftn(v)
    for ax, d in enumerate(sh):
        k = np.fft.fftfreq(v.shape[ax])
        shape = [1, 1, 1]; shape[ax] = -1
        f *= np.exp(-2j * np.pi * k * d).reshape(shape)
    return np.fft.ifftn(f)

def ramp(v, sup):
    g = []
    for ax in range(3):
        a = np.take(v, range(0, n[ax] - 1), ax); b = np.take(v, range(1, n[ax]), ax)
        m = np.take(sup, range(0, n[ax] - 1), ax) & np.take(sup, range(1, n[ax]), ax)
        g.append(np.angle((np.conj(a) * b)[m].sum()))
    z, y, x = np.meshgrid(*(np.arange(m) - m // 2 for m in n), indexing="ij")
    return v * np.exp(-1j * (g[0] * z + g[1] * y + g[2] * x))

def analyse(objs):
    ref = objs[0]
    ra = np.abs(ref)
    out = [ref]
    for o in objs[1:]:
        a = np.abs(o)
        s1, c1 = register(a, ra)
        s2, c2 = register(np.abs(twin(o)), ra)
        if c2 > c1:
            o = twin(o); s1 = s2
        out.append(fshift(o, s1))
    sups = []
    for i, o in enumerate(out):
        a = np.abs(o); s = a > 0.2 * a.max()
        out[i] = ramp(o, s); sups.append(s)
    common = np.sum(sups, 0) * 2 > len(sups)
    depth = ndimage.distance_transform_edt(np.pad(common, 1))[1:-1, 1:-1, 1:-1]
    core = depth >= 0.5 * depth.max()
    for i, o in enumerate(out):
        out[i] = o * np.exp(-1j * np.median(np.angle(o[core])))
    d = [np.angle(o[common] * np.conj(out[0][common])) for o in out]
    D = np.array(d)
    G = D @ D.T
    lam, v = np.linalg.eigh(G)
    omega = np.sqrt(lam[-1]) * v[:, -1]
    psi = v[:, -1] @ D / np.sqrt(lam[-1])
    qhat = np.array([0.3, 0.2, 0.93]); qhat /= np.linalg.norm(qhat)
    strains = []
    for o in out:
        e = np.zeros(n)
        for ax in range(3):
            a = np.roll(o, 1, ax); b = np.roll(o, -1, ax)
            e += qhat[ax] * 0.5 * np.angle(np.conj(a) * b)
        strains.append(e * common)
    # Lab grid: a sheared basis, trilinear.
    A = np.array([[1, 0.2, 0], [0, 1, 0.1], [0.1, 0, 1.2]])
    coords = np.indices(n).reshape(3, -1).astype(np.float64) - np.array(n)[:, None] / 2
    src = np.linalg.inv(A) @ coords + np.array(n)[:, None] / 2
    for i, o in enumerate(out):
        re = ndimage.map_coordinates(o.real, src, order=1); im = ndimage.map_coordinates(o.imag, src, order=1)
        full = np.zeros(n); full[common] = d[i]
        ndimage.map_coordinates(full, src, order=1); ndimage.map_coordinates(strains[i], src, order=1)
    return [x.mean() for x in d], omega

times = []
for _ in range(reps):
    t = time.perf_counter()
    means, omega = analyse([o.astype(np.complex64) for o in objs0])
    times.append(time.perf_counter() - t)
print("numpy/scipy peer: median %.2f s over %d runs (states %d, shape %s); dphi_mean deg %s"
      % (np.median(times), reps, len(objs0), n, np.round(np.degrees(means), 2)))
