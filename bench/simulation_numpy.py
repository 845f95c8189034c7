#!/usr/bin/env python3
"""Peer for `bragg bench simulate`: the same training pair and crystal simulation in
numpy/scipy (single precision where numpy allows), timed in the same way (median of
repeats after one warm-up).

A training pair: random hexagonal prism (8 half-spaces, random aspect ratios and rotation,
anti-aliased by a linear ramp), Gaussian-correlated phase (white noise, scipy.ndimage
Gaussian filter, zero mean / unit RMS in the crystal), object padded to twice its size,
scipy.fft.fftn, |F|^2, scaled to a peak count, numpy Poisson noise.

Usage: python3 bench/simulation_numpy.py [--pair-size 64] [--crystal-size 128] [--repeats 10]
"""
import argparse, json, time
import numpy as np
import scipy.fft as sfft
from scipy.ndimage import gaussian_filter
from scipy.spatial.transform import Rotation


def prism_amplitude(n, extent, rng):
    aspects = rng.uniform(0.7, 1.3, 3)
    height = rng.uniform(0.6, 1.4) * 2
    normals, dists = [], []
    for k in range(6):
        a = k * np.pi / 3
        normals.append([np.cos(a), np.sin(a), 0]); dists.append(aspects[k % 3])
    normals += [[0, 0, 1], [0, 0, -1]]; dists += [height / 2, height / 2]
    R = Rotation.random(random_state=rng).as_matrix()
    normals = np.array(normals) @ R.T
    dists = np.array(dists) * extent / 2.6
    c = np.arange(n, dtype=np.float32) - n // 2
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    amp = np.ones((n, n, n), np.float32)
    for nv, d in zip(normals, dists):
        w = np.abs(nv).sum()
        s = 0.5 + (d - (nv[0] * x + nv[1] * y + nv[2] * z)) / w
        amp *= np.clip(s, 0, 1)
    return amp


def simulate(n_obj, box, rng, corr=3.0, rms=0.8, photons=1e6):
    amp = prism_amplitude(n_obj, 0.8 * n_obj, rng)
    noise = rng.standard_normal((n_obj,) * 3).astype(np.float32)
    ph = gaussian_filter(noise, corr)
    m = amp > 0.5
    ph = (ph - ph[m].mean()) * (rms / ph[m].std())
    obj = (amp * np.exp(1j * ph)).astype(np.complex64)
    padded = np.zeros((box,) * 3, np.complex64)
    s = box // 2 - n_obj // 2
    padded[s:s + n_obj, s:s + n_obj, s:s + n_obj] = obj
    f = sfft.fftn(sfft.ifftshift(padded), workers=1)
    i = sfft.fftshift((f.real ** 2 + f.imag ** 2).astype(np.float32))
    i *= photons / i.max()
    return rng.poisson(i).astype(np.float32), obj


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pair-size", type=int, default=64)
    ap.add_argument("--crystal-size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=10)
    a = ap.parse_args()
    rng = np.random.default_rng(1)
    simulate(a.pair_size // 2, a.pair_size, rng)
    pair = []
    for _ in range(a.repeats):
        t = time.perf_counter(); simulate(a.pair_size // 2, a.pair_size, rng); pair.append(time.perf_counter() - t)
    simulate(a.crystal_size, a.crystal_size, rng, corr=4)
    crystal = []
    for _ in range(max(1, a.repeats // 3)):
        t = time.perf_counter(); simulate(a.crystal_size, a.crystal_size, rng, corr=4); crystal.append(time.perf_counter() - t)
    print(json.dumps({"bench": "simulate-numpy", "pair_size": a.pair_size, "pair_ms": round(float(np.median(pair)) * 1e3, 3),
                      "crystal_size": a.crystal_size, "crystal_ms": round(float(np.median(crystal)) * 1e3, 2)}))


if __name__ == "__main__":
    main()
