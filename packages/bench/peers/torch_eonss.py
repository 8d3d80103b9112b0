#!/usr/bin/python3
"""Peer baseline: EONSS in PyTorch on the CPU, the way the paper's code runs it.

Needs Debian's python3-torch (apt-get install -y python3-torch). Prints one JSON line.
  --mode best|batched|per-patch  --batch N  --seconds N  --threads N
"best" (default) tries per-patch and batch sizes 8..64 and reports the fastest. The published
geometry on 235 px patches: conv1 3->8 5x5 s2 p2, GDN, maxpool 2; conv2 8->16; conv3 16->32 (same);
conv4 32->64 3x3 s1 p0, GDN, maxpool 2; 1x1 64->256, GDN; 1x1 256->1.
GDN(x)_i = x_i / sqrt(beta_i + sum_j gamma[j][i] x_j^2), computed as in the published code (a 1x1
convolution of x^2 with gamma^T). Random weights and inputs: only speed is measured.
"""
import argparse, json, time, torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument('--mode', default='best', choices=['best', 'batched', 'per-patch'])
p.add_argument('--batch', type=int, default=32)
p.add_argument('--seconds', type=float, default=5.0)
p.add_argument('--threads', type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.set_grad_enabled(False)

# (in, out, kernel, stride, pad, gdn, maxpool)
shapes = [(3, 8, 5, 2, 2, True, True), (8, 16, 5, 2, 2, True, True), (16, 32, 5, 2, 2, True, True),
          (32, 64, 3, 1, 0, True, True), (64, 256, 1, 1, 0, True, False), (256, 1, 1, 1, 0, False, False)]
layers = []
for cin, cout, k, s, pad, gdn, pool in shapes:
    w = torch.randn(cout, cin, k, k) * 0.1
    b = torch.randn(cout) * 0.1
    gamma = (torch.rand(cout, cout) * 0.01).t().reshape(cout, cout, 1, 1).contiguous() if gdn else None
    beta = torch.ones(cout) if gdn else None
    layers.append((w, b, s, pad, gamma, beta, pool))

def model(x):
    for w, b, s, pad, gamma, beta, pool in layers:
        x = F.conv2d(x, w, b, stride=s, padding=pad)
        if gamma is not None:
            x = x / torch.sqrt(F.conv2d(x * x, gamma, beta))
        if pool:
            x = F.max_pool2d(x, 2)
    return x.view(x.shape[0], -1)

def rate(n, seconds):
    x = torch.rand(n, 3, 235, 235)
    model(x)
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        model(x); done += n
    return done / (time.perf_counter() - t0)

if a.mode == 'best':   # the peer at its best: per-patch or the fastest batch size
    trials = {n: rate(n, a.seconds / 5) for n in (1, 8, 32, 64)}
    n = max(trials, key=trials.get); pps = rate(n, a.seconds)
    mode = 'per-patch' if n == 1 else f'batch {n}'
else:
    n = a.batch if a.mode == 'batched' else 1
    pps = rate(n, a.seconds); mode = a.mode
print(json.dumps({'peer': 'pytorch-' + torch.__version__, 'model': 'eonss', 'patch': 235, 'mode': mode,
                  'threads': a.threads, 'patches_per_s': round(pps, 1), 'megapixels_per_s': round(pps * 235 * 235 / 1e6, 2),
                  'ms_per_patch': round(1000 / pps, 4)}))
