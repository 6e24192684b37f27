"""One BiMamba layer of VideoMamba-Ti at 64 frames (batch 4), training step on triton, bf16: for ncu."""
import torch
from videomamba.modules.bimamba import BiMamba
torch.manual_seed(0)
m = BiMamba(192, backend="triton").cuda()
x = torch.randn(4, 12545, 192, device="cuda", requires_grad=True)
for _ in range(3):
    with torch.autocast("cuda", torch.bfloat16):
        y = m(x)
    y.float().sum().backward()
torch.cuda.synchronize()
print("ok")
