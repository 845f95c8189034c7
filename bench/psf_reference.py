#!/usr/bin/env python3
"""Reference for partial coherence (issue 21): a plain numpy HIO + ER *told the true
point-spread function*, and the complex error of any reconstruction against the truth.

Phase:  python3 bench/psf_reference.py phase I.npy TRUTH.npy --psf gauss:0.5 [--seed 1]
        (I centred intensity; TRUTH the centred complex object; psf gauss:SIGMA,
        lorentz:HALFWIDTH (separable Cauchy, as `bragg simulate --blur-lorentzian`) or none)
        HIO:400 (beta 0.9) then ER:400, shrink-wrap every 20 iterations (Gaussian sigma 2 -> 1
        px, threshold 0.2 of the maximum), autocorrelation support at 4%; modulus projection
        F <- F sqrt(I / (|F|^2 (x) K)) on every pixel, the convolution by FFT with the
        kernel's analytic transform. Prints the complex error.
Error:  python3 bench/psf_reference.py error RECON.npy TRUTH.npy
        Complex error after removing, from both, the phase ramp (centre of mass of |F|^2) and
        then from the reconstruction the twin, the sub-voxel shift and the global phase:
        sqrt(1 - |<a, b>|^2 / (|a|^2 |b|^2)), the best of the object and its twin.
"""
import argparse, sys
import numpy as np

fft = np.fft


def freqs(n):
    return fft.fftfreq(n) * 2 * np.pi


def kernel_transform(shape, psf):
    if psf == "none":
        return None
    model, w = psf.split(":")
    w = float(w)
    qs = np.meshgrid(*[freqs(n) for n in shape], indexing="ij")
    if model == "gauss":
        return np.exp(-0.5 * w * w * sum(q * q for q in qs))
    if model == "lorentz":
        return np.exp(-w * sum(np.abs(q) for q in qs))
    sys.exit(f"unknown psf model {model}")


def remove_ramp(obj):
    f = fft.fftshift(fft.fftn(fft.ifftshift(obj)))
    i = np.abs(f) ** 2
    grids = np.meshgrid(*[np.arange(n) - n // 2 for n in obj.shape], indexing="ij")
    com = [float((g * i).sum() / i.sum()) for g in grids]
    r = np.meshgrid(*[np.arange(n) for n in obj.shape], indexing="ij")
    ramp = np.exp(-2j * np.pi * sum(c * x / n for c, x, n in zip(com, r, obj.shape)))
    return obj * ramp


def shift_of(a, b):
    """Sub-voxel shift that moves a onto b (cross-correlation peak, parabolic refinement)."""
    c = np.abs(fft.ifftn(fft.fftn(b) * np.conj(fft.fftn(a))))
    p = np.unravel_index(np.argmax(c), c.shape)
    s = []
    for ax, n in enumerate(c.shape):
        idx = list(p)
        vals = []
        for d in (-1, 0, 1):
            idx[ax] = (p[ax] + d) % n
            vals.append(c[tuple(idx)])
        den = vals[0] - 2 * vals[1] + vals[2]
        frac = 0.5 * (vals[0] - vals[2]) / den if den != 0 else 0.0
        k = p[ax] + frac
        s.append(k - n if k > n / 2 else k)
    return s


def fourier_shift(a, s):
    qs = np.meshgrid(*[fft.fftfreq(n) for n in a.shape], indexing="ij")
    ph = np.exp(-2j * np.pi * sum(si * q for si, q in zip(s, qs)))
    return fft.ifftn(fft.fftn(a) * ph)


def error(recon, truth):
    truth = remove_ramp(truth)
    best = 1.0
    twin = np.roll(np.conj(recon[::-1, ::-1, ::-1]), [1 if n % 2 == 0 else 0 for n in recon.shape], axis=(0, 1, 2))
    for cand in (recon, twin):
        cand = remove_ramp(cand)
        moved = fourier_shift(cand, shift_of(cand, truth))
        ip = np.vdot(moved, truth)
        e = np.sqrt(max(0.0, 1 - abs(ip) ** 2 / (np.vdot(moved, moved).real * np.vdot(truth, truth).real)))
        best = min(best, e)
    return best


def gauss_blur(x, sigma):
    k = np.exp(-0.5 * sigma * sigma * sum(q * q for q in np.meshgrid(*[freqs(n) for n in x.shape], indexing="ij")))
    return fft.ifftn(fft.fftn(x) * k).real


def phase(intensity, khat, seed, hio=400, er=400, beta=0.9):
    rng = np.random.default_rng(seed)
    I = np.maximum(fft.ifftshift(intensity).astype(np.float64), 0)
    auto = np.abs(fft.ifftn(I))
    support = auto > 0.04 * auto.max()
    f = np.sqrt(I) * np.exp(2j * np.pi * rng.random(I.shape))
    rho = fft.ifftn(f) * support
    total = hio + er
    k0 = 1.0 if khat is None else float(khat.mean())
    for it in range(total):
        f = fft.fftn(rho)
        m2 = np.abs(f) ** 2
        # I_c >= K(0)|F|^2 for a nonnegative kernel: the floor against round-off.
        ic = m2 if khat is None else np.maximum(fft.ifftn(fft.fftn(m2) * khat).real, k0 * m2)
        f *= np.sqrt(I / np.maximum(ic, 1e-30))
        rp = fft.ifftn(f)
        rho = np.where(support, rp, rho - beta * rp if it < hio else 0)
        if (it + 1) % 20 == 0 and it + 1 < total:
            sigma = 2 - (it + 1) / (total - 1)
            b = gauss_blur(np.abs(rho * support), sigma)
            support = b > 0.2 * b.max()
    return fft.fftshift(rho * support)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["phase", "error"])
    p.add_argument("first")
    p.add_argument("truth")
    p.add_argument("--psf", default="none")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    truth = np.load(a.truth)
    if a.mode == "error":
        print(f"error {error(np.load(a.first).astype(np.complex128), truth.astype(np.complex128)):.4f}")
        return
    intensity = np.load(a.first)
    r = phase(intensity, kernel_transform(intensity.shape, a.psf), a.seed)
    print(f"numpy HIO:400+ER:400 told psf={a.psf}: error {error(r, truth.astype(np.complex128)):.4f}")


if __name__ == "__main__":
    main()
