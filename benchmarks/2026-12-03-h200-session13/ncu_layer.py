"""One VideoMamba-Ti mixer layer (BiMamba on the Triton kernels, bf16 autocast) at 8 frames x 32 clips: two
forward + backward passes, for Nsight Compute (the second pass's launches are the ones to profile)."""
import torch

from videomamba.modules.bimamba import BiMamba

torch.manual_seed(0)
m = BiMamba(192, backend="triton").cuda()
h = torch.randn(32, 1 + 196 * 8, 192, device="cuda", requires_grad=True)
for _ in range(2):
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y = m(h)
    y.float().square().mean().backward()
    torch.cuda.synchronize()
print("ok", float(h.grad.abs().sum()))
