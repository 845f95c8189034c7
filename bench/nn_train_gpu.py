#!/usr/bin/env python3
"""Trains BraggKit's phase-retrieval network (Sources/Neural/Network.swift, in PyTorch as
bench/nn_torch.py) on a GPU, with training pairs simulated on the GPU in batches, and writes
a model file `bragg` loads.

    python3 bench/nn_train_gpu.py --init models/default-c8-64.safetensors --seconds 420 \
        --out OUT.safetensors [--batch 32] [--learning-rate 1e-3] [--checkpoint-seconds 60]

The pairs follow `Simulation.TrainingPair.make(size: 64, seed:)` (Sources/Simulation/
TrainingPair.swift, Crystal.swift, Fields.swift, Diffraction.swift) in distribution, not
bit for bit (another random generator):
  * fill ~ U(0.55, 0.9); largest extent along x, y or z = min(fill·32, 30) voxels;
  * a hexagonal prism of radius 1 with facet-pair distances ~ U(0.7, 1.3) and height
    U(0.6, 1.4)·2, rotated by a uniform random rotation (the same quaternion formula),
    scaled uniformly so its bounding box fits;
  * amplitude on the 32³ grid with BraggKit's anti-aliased edges: per facet
    s = 0.5 + (d − n·r)/(|nx|+|ny|+|nz|); 0 if any s ≤ 0; the one partial s if at most
    one facet cuts the voxel; else the mean over 4×4×4 sub-voxels of
    clamp(min_k 0.5 + 4(d_k − n_k·(r+o))/w_k, 0, 1);
  * phase: white Gaussian noise smoothed (periodically, through the FFT) by a Gaussian of
    σ = correlation length ~ U(2, 6) voxels, then zero mean and RMS ~ U(0.2, 1.2) rad over
    the voxels of amplitude > 0.5;
  * intensity |FFT|² of the object padded to 64³, centred, scaled to a peak of
    photons ~ logU(1e4, 1e7), Poisson-sampled;
  * input and physics target: √I scaled to peak 1.
The loss is Training.swift's: physics L1 between M̂ = |F|·ΣD/Σ|F| and D, mean over the box,
plus `--supervised-weight` × the twin-aware supervised term (mean (A−A*)² + A*²·wrap(φ−φ*)²
against the truth or its twin conj ρ(−r), whichever is nearer); AdamW (β 0.9/0.999, ε 1e-8,
decoupled weight decay 1e-4), gradient norm clipped at 1, linear warm-up over the first 1 %
then cosine decay to 1e-5, here over the wall-clock budget (the number of steps a GPU gets
through is not known in advance). Every pair is new: nothing is seen twice.

--selftest runs a few steps on the CPU at a small batch and checks the simulator's
invariants. --dump-stats N writes statistics of N simulated pairs (for comparison with
Swift-made ones) and exits.
"""
import argparse, json, math, os, struct, sys, time

PROCESS_START = __import__("time").perf_counter()

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nn_torch import PhaseNet  # noqa: E402

N_OBJ = 32
N_BOX = 64


# ----------------------------------------------------------------------------------------
# The simulator
# ----------------------------------------------------------------------------------------

def _u(g, b, lo, hi, dev):
    return lo + (hi - lo) * torch.rand(b, generator=g, device=dev, dtype=torch.float64)


def random_rotations(g, b, dev):
    """Grid.swift's Matrix3x3.randomRotation (a uniform unit quaternion)."""
    u1, u2, u3 = (torch.rand(b, generator=g, device=dev, dtype=torch.float64) for _ in range(3))
    w = torch.sqrt(1 - u1) * torch.sin(2 * math.pi * u2)
    x = torch.sqrt(1 - u1) * torch.cos(2 * math.pi * u2)
    y = torch.sqrt(u1) * torch.sin(2 * math.pi * u3)
    z = torch.sqrt(u1) * torch.cos(2 * math.pi * u3)
    r = torch.stack([
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        torch.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        torch.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)
    return r  # [b, 3, 3], rows


def random_prisms(g, b, dev):
    """Facet normals [b, 8, 3] (lab x, y, z) and distances [b, 8] of
    TrainingPair.parameters' crystals, plus the drawn fill."""
    n = N_OBJ
    fill = _u(g, b, 0.55, 0.9, dev)
    max_extent = torch.clamp(fill * n, max=n - 2.0)
    aspects = torch.stack([_u(g, b, 0.7, 1.3, dev) for _ in range(3)], -1)  # [b, 3]
    height = _u(g, b, 0.6, 1.4, dev) * 2
    rot = random_rotations(g, b, dev)
    ang = torch.arange(6, device=dev, dtype=torch.float64) * math.pi / 3
    side = torch.stack([torch.cos(ang), torch.sin(ang), torch.zeros_like(ang)], -1)  # [6, 3]
    normals0 = torch.cat([side, torch.tensor([[0, 0, 1.0], [0, 0, -1.0]], device=dev, dtype=torch.float64)])
    dist = torch.cat([aspects[:, [0, 1, 2, 0, 1, 2]], (height / 2)[:, None].expand(b, 2)], 1)  # [b, 8]
    # Corners of the (unrotated) prism: adjacent side facets k, k+1 meet on a vertical edge
    # (with aspects in 0.7–1.3 every side facet is active: d_k < d_{k−1} + d_{k+1}).
    k = torch.arange(6, device=dev)
    n1, n2 = side[k][:, :2], side[(k + 1) % 6][:, :2]  # [6, 2]
    det = n1[:, 0] * n2[:, 1] - n1[:, 1] * n2[:, 0]
    d1, d2 = dist[:, k], dist[:, (k + 1) % 6]  # [b, 6]
    px = (d1 * n2[:, 1] - d2 * n1[:, 1]) / det
    py = (n1[:, 0] * d2 - n2[:, 0] * d1) / det
    hz = (height / 2)[:, None].expand(b, 6)
    corners = torch.cat([torch.stack([px, py, hz], -1), torch.stack([px, py, -hz], -1)], 1)  # [b, 12, 3]
    normals = torch.einsum('bij,kj->bki', rot, normals0)  # R · n
    vert = torch.einsum('bij,bkj->bki', rot, corners)
    extent = vert.amax(1) - vert.amin(1)  # [b, 3]
    s = max_extent / extent.amax(1)  # scaledToFit with the same limit on every axis
    return normals, dist * s[:, None], fill


_OFFSETS = None


def amplitudes(normals, dist):
    """Crystal.amplitude(box: [32, 32, 32]) for a batch: [b, 32, 32, 32] float32."""
    global _OFFSETS
    dev = normals.device
    b, n = normals.shape[0], N_OBJ
    c = n // 2
    idx = torch.arange(n, device=dev, dtype=torch.float32) - c
    # Voxel (i0, i1, i2) sits at lab (x, y, z) = (i2 − c, i1 − c, i0 − c) (orthogonal grid).
    zz, yy, xx = torch.meshgrid(idx, idx, idx, indexing='ij')
    pos = torch.stack([xx, yy, zz], -1).reshape(-1, 3)  # [V, 3]
    nrm = normals.float()  # [b, 8, 3]
    d = dist.float()  # [b, 8]
    inv_w = 1 / nrm.abs().sum(-1)  # 1 / thickness of a unit voxel along n
    proj = torch.einsum('bkj,vj->bkv', nrm, pos)  # [b, 8, V]
    s = 0.5 + (d[:, :, None] - proj) * inv_w[:, :, None]
    outside = (s <= 0).any(1)
    partial = ((s > 0) & (s < 1)).sum(1)
    simple = torch.clamp(s.amin(1), 0, 1)
    amp = torch.where(outside, torch.zeros_like(simple), simple)
    multi = (~outside) & (partial > 1)
    if multi.any():
        if _OFFSETS is None or _OFFSETS.device != dev:
            f = (torch.arange(4, device=dev, dtype=torch.float32) + 0.5) / 4 - 0.5
            a, bb, e = torch.meshgrid(f, f, f, indexing='ij')
            _OFFSETS = torch.stack([a, bb, e], -1).reshape(-1, 3)  # symmetric in x, y, z
        bi, vi = multi.nonzero(as_tuple=True)
        nm, dm, iw = nrm[bi], d[bi], inv_w[bi]  # [m, 8, 3], [m, 8], [m, 8]
        base = dm - torch.einsum('mkj,mj->mk', nm, pos[vi])  # d − n·r
        acc = torch.zeros(bi.shape[0], device=dev)
        for o in _OFFSETS:
            m = (0.5 + 4 * (base - nm @ o) * iw).amin(1)
            acc += torch.clamp(m, 0, 1)
        amp[bi, vi] = acc / 64
    return amp.reshape(b, n, n, n)


def gaussian_phase(g, amp, corr, rms):
    """PhaseField.gaussianCorrelated: smoothed white noise, zero mean and RMS `rms` over
    amplitude > 0.5, applied to every voxel."""
    b, n = amp.shape[0], amp.shape[-1]
    dev = amp.device
    noise = torch.randn(amp.shape, generator=g, device=dev, dtype=torch.float32)
    q = 2 * math.pi * torch.fft.fftfreq(n, device=dev, dtype=torch.float32)
    q2 = q[:, None, None] ** 2 + q[None, :, None] ** 2 + q[None, None, :] ** 2
    filt = torch.exp(-0.5 * (corr.float() ** 2)[:, None, None, None] * q2)
    sm = torch.fft.ifftn(torch.fft.fftn(noise, dim=(-3, -2, -1)) * filt, dim=(-3, -2, -1)).real
    sup = (amp > 0.5).float()
    cnt = sup.sum((1, 2, 3)).clamp(min=1)
    mean = (sm * sup).sum((1, 2, 3)) / cnt
    var = ((sm.double() ** 2) * sup).sum((1, 2, 3)) / cnt - mean.double() ** 2
    sd = torch.sqrt(var.clamp(min=0)).float()
    scale = torch.where(sd > 0, rms.float() / sd, torch.zeros_like(sd))
    return (sm - mean[:, None, None, None]) * scale[:, None, None, None]


def pad_centred(obj, box=N_BOX):
    """The object (…, h, h, h) centred in a box: origin box/2 − h/2 per axis."""
    h = obj.shape[-1]
    o = box // 2 - h // 2
    return F.pad(obj, (o, box - h - o) * 3) if not obj.is_complex() else torch.complex(
        F.pad(obj.real, (o, box - h - o) * 3), F.pad(obj.imag, (o, box - h - o) * 3))


def twins(amp, phase):
    """Training.swift's twin(): the point reflection i → (n + c − i) mod n per axis,
    c ∈ {−1, 0} (the one mapping the amplitude best onto itself, ties to −1), phase negated."""
    dims = (1, 2, 3)
    r1 = torch.flip(amp, dims)  # c = −1: i → n − 1 − i
    r0 = torch.roll(r1, (1, 1, 1), dims)  # c = 0: i → −i mod n
    o1 = (amp * r1).sum(dims)
    o0 = (amp * r0).sum(dims)
    use0 = (o0 > o1)[:, None, None, None]
    tp1 = -torch.flip(phase, dims)
    tp0 = torch.roll(tp1, (1, 1, 1), dims)
    return torch.where(use0, r0, r1), torch.where(use0, tp0, tp1)


def simulate(g, b, dev, noise=True):
    """A batch of training pairs: dict of input [b,1,64,64,64] (centred √I, peak 1),
    target D (the same, FFT order), truth and twin amplitude/phase [b,32,32,32], and the
    drawn parameters."""
    normals, dist, fill = random_prisms(g, b, dev)
    corr = _u(g, b, 2.0, 6.0, dev)
    rms = _u(g, b, 0.2, 1.2, dev)
    photons = torch.exp(_u(g, b, math.log(1e4), math.log(1e7), dev))
    amp = amplitudes(normals, dist)
    phase = gaussian_phase(g, amp, corr, rms)
    obj = torch.polar(amp, phase)
    f = torch.fft.fftn(pad_centred(obj), dim=(-3, -2, -1))
    inten = f.real ** 2 + f.imag ** 2  # FFT order
    peak = inten.amax((1, 2, 3), keepdim=True)
    inten = inten * (photons.float()[:, None, None, None] / peak)
    if noise:
        inten = torch.poisson(inten, generator=g)
    a = torch.sqrt(inten.clamp(min=0))
    a = a / a.amax((1, 2, 3), keepdim=True).clamp(min=1e-30)
    ta, tp = twins(amp, phase)
    return {"input": torch.fft.fftshift(a, dim=(-3, -2, -1))[:, None].contiguous(), "target": a,
            "amp": amp, "phase": phase, "twin_amp": ta, "twin_phase": tp,
            "fill": fill, "corr": corr, "rms": rms, "photons": photons, "intensity_sum": inten.sum((1, 2, 3))}


# ----------------------------------------------------------------------------------------
# Losses (Physics.swift, Training.swift)
# ----------------------------------------------------------------------------------------

def physics_l1(a, p, target):
    """Per-sample L1 between M̂ = |FFT(pad(A e^{iφ}))|·ΣD/ΣM and D (FFT order), mean over the box."""
    obj = torch.polar(a.float(), p.float())
    m = torch.fft.fftn(pad_centred(obj), dim=(-3, -2, -1)).abs()
    m = m * (target.sum((1, 2, 3), keepdim=True) / m.sum((1, 2, 3), keepdim=True))
    return (m - target).abs().mean((1, 2, 3))


def chi2_eq1(a, p, target):
    """ChiSquare.eq1 with the model scaled so that Σ model² = Σ data²: per sample."""
    obj = torch.polar(a.float(), p.float())
    m = torch.fft.fftn(pad_centred(obj), dim=(-3, -2, -1)).abs().double()
    d = target.double()
    mm, dd, md = (m * m).sum((1, 2, 3)), (d * d).sum((1, 2, 3)), (m * d).sum((1, 2, 3))
    return (2 - 2 * md / torch.sqrt(dd * mm)).clamp(min=0)


def sup_distance(a, p, ta, tp):
    ep = p - tp
    ep = ep - 2 * math.pi * torch.round(ep / (2 * math.pi))
    return ((a - ta) ** 2 + ta * ta * ep * ep).mean((1, 2, 3))


def losses(net, batch, sup_weight, autocast):
    with torch.autocast(device_type=batch["input"].device.type, dtype=torch.bfloat16, enabled=autocast):
        a, p = net(batch["input"])
    a, p = a.float()[:, 0], p.float()[:, 0]
    phys = physics_l1(a, p, batch["target"])
    dt = sup_distance(a, p, batch["amp"], batch["phase"])
    dw = sup_distance(a, p, batch["twin_amp"], batch["twin_phase"])
    sup = torch.minimum(dt, dw)  # twin-aware: the gradient of the nearer one
    return phys, sup, phys + sup_weight * sup, (a, p)


# ----------------------------------------------------------------------------------------
# Model files (Safetensors.swift, ModelFile.swift)
# ----------------------------------------------------------------------------------------

def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop('__metadata__', {})
    tensors = {}
    for k, v in header.items():
        assert v['dtype'] == 'F32', f"{path}: tensor {k} is {v['dtype']}, not F32"
        s, e = v['data_offsets']
        tensors[k] = torch.frombuffer(bytearray(data[s:e]), dtype=torch.float32).reshape(v['shape'])
    return tensors, meta


def write_safetensors(path, tensors, meta):
    """F32 little-endian, names sorted, header padded to 8 bytes; written atomically."""
    header, blobs, off = {"__metadata__": {k: str(v) for k, v in meta.items()}}, [], 0
    for k in sorted(tensors):
        t = tensors[k].detach().to('cpu', torch.float32).contiguous()
        b = t.numpy().astype('<f4').tobytes()
        header[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load_net(path, dev):
    tensors, meta = read_safetensors(path)
    for k, want in (("format", "braggkit-phasenet"), ("architecture", "bcdi-encoder-2decoder-v1")):
        if meta.get(k) != want:
            sys.exit(f"nn_train_gpu: model file {path}: metadata {k} is '{meta.get(k)}', not '{want}'")
    net = PhaseNet(int(meta["width"]), int(meta["channels_per_group"]))
    state = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        sys.exit(f"nn_train_gpu: model file {path}: tensors missing {missing}, unexpected {unexpected}")
    return net.to(dev), meta


# ----------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------

def lr_at(frac, peak, floor, warm=0.01):
    if frac < warm:
        return peak * max(frac / warm, 1e-3)
    t = min(1.0, (frac - warm) / (1 - warm))
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * t))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", help="start from this BraggKit model (default: from scratch)")
    ap.add_argument("--out", help="model file to write (checkpoints overwrite it)")
    ap.add_argument("--seconds", type=float, default=420, help="wall-clock training budget (the schedule spans it)")
    ap.add_argument("--stop-by", type=float, default=0,
                    help="end training this many seconds after the process started, setup included (0: no limit); "
                         "the schedule is shortened to fit")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--learning-rate", type=float, default=1e-3)
    ap.add_argument("--min-learning-rate", type=float, default=1e-5)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--supervised-weight", type=float, default=0.5)
    ap.add_argument("--validation", type=int, default=256, help="held-out pairs for the validation loss")
    ap.add_argument("--checkpoint-seconds", type=float, default=60)
    ap.add_argument("--precision", choices=["fp32", "bf16", "auto"], default="auto",
                    help="bf16 autocast for the network (losses stay fp32); auto times both first")
    ap.add_argument("--seed", type=int, default=20261204)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--max-steps", type=int, help="stop after this many optimiser steps (0: export the --init model)")
    ap.add_argument("--log", help="also append the log here")
    ap.add_argument("--selftest", action="store_true", help="a few CPU steps at batch 2")
    ap.add_argument("--dump-stats", type=int, default=0, help="write statistics of N pairs (JSON) and exit")
    args = ap.parse_args()

    dev = torch.device("cuda" if torch.cuda.is_available() and not args.selftest else "cpu")
    logf = open(args.log, "a") if args.log else None

    def log(*a):
        s = " ".join(str(x) for x in a)
        print(s, flush=True)
        if logf:
            logf.write(s + "\n")
            logf.flush()

    g = torch.Generator(device=dev)
    g.manual_seed(args.seed)

    if args.dump_stats:
        out = {k: [] for k in ("fill", "corr", "rms", "photons", "support", "amp_sum", "phase_rms_support",
                               "intensity_sum", "twin_c0")}
        left = args.dump_stats
        while left > 0:
            b = min(left, 64)
            p = simulate(g, b, dev)
            sup = p["amp"] > 0.5
            out["fill"] += p["fill"].tolist(); out["corr"] += p["corr"].tolist(); out["rms"] += p["rms"].tolist()
            out["photons"] += p["photons"].tolist()
            out["support"] += sup.sum((1, 2, 3)).tolist()
            out["amp_sum"] += p["amp"].sum((1, 2, 3)).tolist()
            out["phase_rms_support"] += torch.sqrt((p["phase"] ** 2 * sup).sum((1, 2, 3)) / sup.sum((1, 2, 3))).tolist()
            out["intensity_sum"] += p["intensity_sum"].tolist()
            left -= b
        json.dump(out, sys.stdout)
        return

    torch.manual_seed(args.seed)
    if args.init:
        net, init_meta = load_net(args.init, dev)
    else:
        net, init_meta = PhaseNet(args.width).to(dev), {}
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        log(f"device {torch.cuda.get_device_name()} torch {torch.__version__}")
    batch = 2 if args.selftest else args.batch
    vgen = torch.Generator(device=dev)
    vgen.manual_seed(args.seed + 5_000_000)
    nval = 4 if args.selftest else args.validation
    val = [simulate(vgen, min(64, nval - i), dev) for i in range(0, nval, 64)]

    def validate():
        net.eval()
        tot = {"physics": 0.0, "sup": 0.0, "chi2": 0.0}
        with torch.no_grad():
            for v in val:
                phys, sup, _, (a, p) = losses(net, v, args.supervised_weight, False)
                tot["physics"] += phys.sum().item(); tot["sup"] += sup.sum().item()
                tot["chi2"] += chi2_eq1(a, p, v["target"]).sum().item()
        net.train()
        return {k: v / nval for k, v in tot.items()}

    opt = torch.optim.AdamW(net.parameters(), lr=args.learning_rate, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=args.weight_decay)
    v0 = validate()
    log(f"start: validation physics {v0['physics']:.6f} supervised {v0['sup']:.6f} chi2 {v0['chi2']:.4f} "
        f"({nval} pairs)")

    def step(bt, lr, autocast):
        for grp in opt.param_groups:
            grp["lr"] = lr
        phys, sup, total, _ = losses(net, bt, args.supervised_weight, autocast)
        opt.zero_grad(set_to_none=True)
        total.mean().backward()
        gn = torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        if not torch.isfinite(gn):  # never let one bad batch into the weights
            opt.zero_grad(set_to_none=True)
            return phys, sup, gn
        opt.step()
        return phys, sup, gn

    autocast = args.precision == "bf16"
    pairs_timing = 0  # pairs trained on while timing fp32 against bf16 (at a learning rate of 1e-7)
    if args.precision == "auto" and dev.type == "cuda":
        # Time both on a few batches at a tiny learning rate (they count as training pairs).
        speeds = {}
        for mode in (False, True, False, True):
            bt = simulate(g, batch, dev)
            torch.cuda.synchronize(); t0 = time.perf_counter()
            for _ in range(5):
                step(bt, 1e-7, mode)
            torch.cuda.synchronize()
            speeds[mode] = (time.perf_counter() - t0) / 5
        pairs_timing = 20 * batch
        sim_t0 = time.perf_counter()
        for _ in range(5):
            simulate(g, batch, dev)
        torch.cuda.synchronize()
        sim_s = (time.perf_counter() - sim_t0) / 5
        autocast = speeds[True] < 0.75 * speeds[False]
        log(f"step at batch {batch}: fp32 {speeds[False]*1e3:.1f} ms, bf16 {speeds[True]*1e3:.1f} ms; "
            f"simulation {sim_s*1e3:.1f} ms; using {'bf16' if autocast else 'fp32'}")

    meta_base = dict(init_meta)
    for k in list(meta_base):
        if k.startswith("optimizer") or k in ("epoch_loss_sum",):
            meta_base.pop(k)
    init_record = None
    if args.init:
        m = init_meta
        init_record = (f"{os.path.basename(args.init)}: seed {m.get('train_seed', '?')}, {m.get('train_samples', '?')} pairs × "
                       f"{m.get('train_epochs', '?')} epochs, {m.get('epochs_done', '0')} done + {m.get('epoch_pairs_done', '0')} pairs"
                       + (f", {m['train_wall_seconds']} s" if 'train_wall_seconds' in m else "")
                       + (f"; it started from {m['train_init']}" if 'train_init' in m else ""))

    t_start = time.perf_counter()
    if args.stop_by > 0:
        left = args.stop_by - (t_start - PROCESS_START) - 10
        if left < args.seconds:
            log(f"setup took {t_start - PROCESS_START:.1f} s: the schedule spans {left:.0f} s instead of {args.seconds:.0f} s")
            args.seconds = max(1.0, left)
    pairs, steps, last_ck = pairs_timing, 0, t_start
    skipped = 0
    run_phys, run_n = 0.0, 0
    hist = []

    def save(final, vres):
        if not args.out:
            return
        el = time.perf_counter() - t_start
        meta = dict(meta_base)
        meta.update({
            "format": "braggkit-phasenet", "architecture": "bcdi-encoder-2decoder-v1",
            "width": str(args.width if not args.init else init_meta["width"]),
            "input_size": "64", "channels_per_group": init_meta.get("channels_per_group", "4"),
            "parameters": str(sum(p.numel() for p in net.parameters())),
            "command": "python3 bench/nn_train_gpu.py " + " ".join(sys.argv[1:]),
            "train_tool": f"bench/nn_train_gpu.py, PyTorch {torch.__version__} on "
                          f"{torch.cuda.get_device_name() if dev.type == 'cuda' else 'CPU'}"
                          f"{', bf16 autocast for the network' if autocast else (', fp32 (TF32 convolutions)' if dev.type == 'cuda' else ', fp32')}",
            "train_data": "bench/nn_train_gpu.py simulate(): the distribution of Simulation.TrainingPair.make(size: 64, seed:), drawn with torch's generator",
            "train_samples": str(pairs), "train_epochs": "1", "epochs_done": "1" if final else "0",
            "epoch_pairs_done": "0" if final else str(pairs),
            "train_batch": str(batch), "train_learning_rate": str(args.learning_rate),
            "train_min_learning_rate": str(args.min_learning_rate), "train_weight_decay": str(args.weight_decay),
            "train_loss": "l1", "train_supervised_weight": str(args.supervised_weight),
            "train_supervised_twin_aware": "true", "train_seed": str(args.seed),
            "train_schedule": f"cosine over {args.seconds:.0f} s of wall clock, warm-up 1%",
            "train_validation_samples": str(nval), "train_wall_seconds": f"{el:.1f}",
            "train_steps": str(steps), "train_threads": "GPU" if dev.type == "cuda" else str(torch.get_num_threads()),
            "last_train_loss": f"{run_phys / max(1, run_n):.6g}",
            "last_validation_loss": f"{vres['physics']:.6g}", "last_validation_chi2": f"{vres['chi2']:.6g}",
        })
        prev = init_meta.get("loss_history", "")
        lineage = len(prev.split(",")) if prev else 0
        runs = init_meta.get("loss_history_run_starts", "1" if lineage else "")
        if final:
            h = f"{lineage + 1}:{run_phys / max(1, run_n):.5g}/{vres['physics']:.5g}"
            meta["loss_history"] = ",".join([x for x in (prev, h) if x])
            meta["loss_history_lineage_epochs"] = str(lineage)
            meta["loss_history_run_starts"] = ",".join([x for x in (runs, str(lineage + 1)) if x])
        if init_record:
            meta["train_init"] = init_record
        tensors = {k: v for k, v in net.state_dict().items()}
        write_safetensors(args.out, tensors, meta)

    max_steps = args.max_steps if args.max_steps is not None else (3 if args.selftest else None)
    while True:
        el = time.perf_counter() - t_start
        if el >= args.seconds or (max_steps is not None and steps >= max_steps):
            break
        lr = lr_at(el / args.seconds, args.learning_rate, args.min_learning_rate)
        bt = simulate(g, batch, dev)
        try:
            phys, sup, gn = step(bt, lr, autocast)
        except Exception as e:  # keep what was learned so far
            log(f"step {steps + 1} failed: {e!r}; stopping here")
            break
        steps += 1
        pairs += batch
        if not torch.isfinite(gn):
            skipped += 1
            log(f"step {steps}: non-finite gradient, update skipped ({skipped} so far)")
        if steps % 50 == 0 or args.selftest:
            run_phys += phys.sum().item(); run_n += batch
        if steps % 200 == 0 or args.selftest:
            log(f"t {el:6.1f} s step {steps} pairs {pairs} lr {lr:.2e} loss physics {phys.mean().item():.6f} "
                f"supervised {sup.mean().item():.6f} |g| {gn.item():.3f}")
        if time.perf_counter() - last_ck >= args.checkpoint_seconds:
            vr = validate()
            hist.append((time.perf_counter() - t_start, pairs, vr))
            log(f"checkpoint t {time.perf_counter() - t_start:.1f} s pairs {pairs}: validation physics "
                f"{vr['physics']:.6f} supervised {vr['sup']:.6f} chi2 {vr['chi2']:.4f}")
            save(False, vr)
            run_phys, run_n = 0.0, 0
            last_ck = time.perf_counter()
    vr = validate()
    log(f"end: {steps} steps ({skipped} skipped), {pairs} pairs, {time.perf_counter() - t_start:.1f} s; validation physics "
        f"{vr['physics']:.6f} supervised {vr['sup']:.6f} chi2 {vr['chi2']:.4f} (start {v0['physics']:.6f} "
        f"{v0['sup']:.6f} {v0['chi2']:.4f})")
    save(True, vr)


if __name__ == "__main__":
    main()
