"""``videomamba info``: versions, devices and the selective-scan backends usable here."""

from __future__ import annotations

import json

from videomamba import env


def register(subparsers) -> None:
    p = subparsers.add_parser("info", help="versions, devices and backends", description=__doc__)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_command)


def collect() -> dict:
    """Everything ``videomamba info`` reports, as a dict."""
    from videomamba import ops
    from videomamba.models import SCAN_ORDERS, list_models

    devices = env.devices()
    auto = {"cpu": ops.resolve_backend("auto", "cpu")}
    if devices["cuda_available"]:
        auto["cuda"] = ops.resolve_backend("auto", "cuda")
    return {"versions": env.versions(), "devices": devices, "backends": ops.backend_status(),
            "available_backends": ops.available_backends(), "auto_backend": auto,
            "models": list_models(), "scan_orders": list(SCAN_ORDERS)}


def run_command(args) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print("versions")
    for name, version in info["versions"].items():
        print(f"  {name:<20} {version or '-'}")
    dev = info["devices"]
    print("devices")
    print(f"  cpu                  {dev['cpu_count']} cores, torch uses {dev['torch_threads']} threads ({dev['platform']})")
    if dev["gpus"]:
        for g in dev["gpus"]:
            print(f"  cuda:{g['index']:<16} {g['name']}, {g['memory_gib']} GiB, sm {g['capability']}")
    else:
        print(f"  cuda                 none (torch CUDA build: {dev['torch_cuda_build'] or 'cpu-only'})")
    print("backends (selective scan / causal conv)")
    for name, line in info["backends"].items():
        print(f"  {name:<20} {line}")
    print("  auto                 " + ", ".join(f"{d} tensors -> {b}" for d, b in info["auto_backend"].items()))
    print("models       " + ", ".join(info["models"]))
    print("scan orders  " + ", ".join(info["scan_orders"]))
    return 0
