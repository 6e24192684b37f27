"""``videomamba info`` and importing without optional accelerators."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from videomamba.cli import main
from videomamba.commands import info


def test_info_command(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for needle in ("torch", "backends", "auto", "cpu tensors -> torch", "videomamba_tiny", "split_direction"):
        assert needle in out
    assert main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["auto_backend"]["cpu"] == "torch" and "torch" in data["available_backends"]
    assert set(data["backends"]) == {"torch", "triton", "mamba_ssm", "reference"}
    assert info.collect()["versions"]["torch"]


def test_import_and_run_without_triton_mamba_or_cuda():
    code = (
        "import sys; sys.modules.update(triton=None, mamba_ssm=None, causal_conv1d=None)\n"
        "import torch, videomamba\n"
        "m = videomamba.create_model('videomamba_tiny', img_size=32, depth=2, num_frames=2, num_classes=3)\n"
        "y = m(torch.randn(1, 3, 2, 32, 32)); y.sum().backward()\n"
        "print(videomamba.available_backends(), tuple(y.shape))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, CUDA_VISIBLE_DEVICES="", TRITON_INTERPRET="0"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['torch', 'reference'] (1, 3)"
