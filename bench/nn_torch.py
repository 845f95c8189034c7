#!/usr/bin/env python3
"""PyTorch CPU peer of `bragg bench nn`: the same encoder-decoder (Sources/Neural/Network.swift),
the same physics loss (pad A·exp(iφ) to the box, FFT, modulus, scale to the data's sum, L1),
one training step (forward + backward + AdamW) and one inference at 64³, c = 8.

    python3 bench/nn_torch.py [--size 64] [--width 8] [--threads 2] [--repeats 5] [--json]

Prints a message and exits 0 when torch is not installed. Can also load a BraggKit model
file (--model FILE.safetensors) to cross-check that the weights open in PyTorch.
"""
import argparse, json, statistics, sys, time

try:
    import torch
    import torch.nn as nn
except ImportError:
    print("nn_torch: torch is not installed (pip install torch); skipping the PyTorch comparison")
    sys.exit(0)




class Block(nn.Module):
    # Names match BraggKit's: encoder.<i>.conv.weight, encoder.<i>.norm.weight/bias
    def __init__(self, cin, cout, stride=1, up=False, per_group=4):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.norm = nn.GroupNorm(max(1, cout // min(cout, per_group)), cout)
        self.act = nn.LeakyReLU(0.01)
        self.up = nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False) if up else None

    def forward(self, x):
        x = self.act(self.norm(self.conv(x)))
        return self.up(x) if self.up is not None else x


class Decoder(nn.Module):
    def __init__(self, c, per_group, head):
        super().__init__()
        # Registered as children "0", "1", "2" so that the names are BraggKit's
        # (amplitude.0.conv.weight, …, amplitude.head.weight), not amplitude.blocks.0….
        blocks = [Block(8 * c, 4 * c, up=True, per_group=per_group),
                  Block(4 * c, 2 * c, up=True, per_group=per_group),
                  Block(2 * c, c, per_group=per_group)]
        for i, b in enumerate(blocks):
            self.add_module(str(i), b)
        self.blocks = blocks  # a plain list: the modules are registered once, above
        self.head = nn.Conv3d(c, 1, 3, padding=1)
        self.kind = head

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        x = self.head(x)
        return torch.sigmoid(x) if self.kind == "sigmoid" else torch.pi * torch.tanh(x)


class PhaseNet(nn.Module):
    def __init__(self, c=8, per_group=4):
        super().__init__()
        chans = [c, 2 * c, 2 * c, 4 * c, 4 * c, 8 * c, 8 * c]
        enc, cin = [], 1
        for i, cout in enumerate(chans):
            enc.append(Block(cin, cout, stride=2 if (i > 0 and cout > cin) else 1, per_group=per_group))
            cin = cout
        self.encoder = nn.ModuleList(enc)
        self.amplitude = Decoder(c, per_group, "sigmoid")
        self.phase = Decoder(c, per_group, "tanh")

    def forward(self, x):
        for b in self.encoder:
            x = b(x)
        return self.amplitude(x), self.phase(x)


def physics_loss(a, p, measured, box):
    obj = torch.polar(a, p)  # A·exp(iφ)
    n, h = box, a.shape[-1]
    o = n // 2 - h // 2
    field = torch.zeros((n, n, n), dtype=torch.complex64)
    field[o:o + h, o:o + h, o:o + h] = obj[0, 0]
    m = torch.abs(torch.fft.fftn(field))
    m = m * (measured.sum() / m.sum())
    return torch.mean(torch.abs(m - measured))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", help="a BraggKit .safetensors model to load into this network")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    net = PhaseNet(args.width)
    if args.model:
        from safetensors.torch import load_file
        state = {k: v for k, v in load_file(args.model).items() if not k.startswith("optimizer.")}
        missing, unexpected = net.load_state_dict(state, strict=False)
        print(f"loaded {args.model}: missing {missing}, unexpected {unexpected}")
    n = args.size
    x = torch.rand(1, 1, n, n, n)
    measured = torch.rand(n, n, n)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    steps, infer = [], []
    for r in range(args.repeats + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        a, p = net(x)
        loss = physics_loss(a, p, measured, n)
        loss.backward()
        opt.step()
        if r > 0:
            steps.append(time.perf_counter() - t0)
    with torch.no_grad():
        for r in range(args.repeats + 1):
            t0 = time.perf_counter()
            a, p = net(x)
            physics_loss(a, p, measured, n)
            if r > 0:
                infer.append(time.perf_counter() - t0)
    res = {"bench": "nn_torch", "torch": torch.__version__, "size": n, "width": args.width,
           "threads": args.threads, "parameters": sum(p.numel() for p in net.parameters()),
           "train_step_s": statistics.median(steps), "inference_s": statistics.median(infer)}
    if args.json:
        print(json.dumps(res))
    else:
        print(f"torch {res['torch']} {n}³ c={args.width} {args.threads} thread(s), {res['parameters']} parameters: "
              f"training step {res['train_step_s']:.3f} s, inference {res['inference_s']:.3f} s (medians of {args.repeats})")


if __name__ == "__main__":
    main()
