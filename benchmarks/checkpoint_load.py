"""Host memory of loading an HF checkpoint: streaming loader vs read-everything-first.

Writes a bf16 HF-layout folder with the real 8B widths (vocab 151936, hidden 4096, FFN 12288,
vision 1152) but few layers (so it fits this machine: ~4 GiB), then loads it in fresh processes:
  ours:     models.qwen3_vl.convert.load_hf_checkpoint (tensor by tensor onto the device arrays)
  baseline: every safetensors file read into memory first (safetensors.numpy.load_file), then the
            same conversion from that dict, as a loader without streaming would.
Reports the median peak RSS above the post-import RSS (and load time) over --repeats runs; the
claim under test is that streaming needs about 1x the model, never 2x.

  .venv/bin/python benchmarks/checkpoint_load.py [--repeats 3] [--text-layers 3]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
GIB = 1024 ** 3


def _rss_gib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / GIB


def write_checkpoint(folder: str, text_layers: int) -> float:
    """An HF folder of constant-valued bf16 tensors; returns its size in GiB."""
    import ml_dtypes
    import numpy as np
    from safetensors.numpy import save_file

    from configs import model_sizes
    from models.qwen3_vl.config import Qwen3VLConfig
    from models.qwen3_vl.param_names import tensor_maps

    spec = model_sizes.get_config("8b").to_dict()
    spec["text_config"]["num_hidden_layers"] = text_layers
    spec["vision_config"].update(depth=3,
                                 deepstack_visual_indexes=list(range(min(3, text_layers))))
    config = Qwen3VLConfig.from_dict(spec)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(dict(config.to_hf_dict(), dtype="bfloat16"), f)
    weight_map, current, total, files = {}, {}, 0, 0

    def flush() -> None:
        nonlocal current, files
        files += 1
        name = f"model-{files:05d}.safetensors"
        save_file(current, os.path.join(folder, name), metadata={"format": "pt"})
        weight_map.update({k: name for k in current})
        current = {}

    for m in tensor_maps(config):
        tensor = np.full(m.hf_shape, 0.01, ml_dtypes.bfloat16)
        if current and sum(t.nbytes for t in current.values()) + tensor.nbytes > GIB:
            flush()
        current[m.hf_name] = tensor
        total += tensor.nbytes
    flush()
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f)
    return total / GIB


def child(mode: str, folder: str) -> None:
    """Load once in this process and print peak RSS above the post-import RSS."""
    import jax
    from safetensors.numpy import load_file

    from models.qwen3_vl.config import Qwen3VLConfig
    from models.qwen3_vl.convert import DictSource, load_hf_checkpoint, load_params

    jax.numpy.zeros(1).block_until_ready()
    before = _rss_gib()
    start = time.perf_counter()
    if mode == "ours":
        _, model = load_hf_checkpoint(folder, param_dtype="bfloat16")
    else:
        tensors = {}
        for name in sorted(os.listdir(folder)):
            if name.endswith(".safetensors"):
                tensors.update(load_file(os.path.join(folder, name)))
        config = Qwen3VLConfig.from_json_file(folder, param_dtype="bfloat16")
        model = load_params(config, DictSource(tensors))
    jax.block_until_ready(jax.tree.leaves(model))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB
    print(json.dumps({"peak_gib": peak - before, "seconds": seconds}))


def run(mode: str, folder: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", mode, folder], cwd=ROOT,
                          capture_output=True, text=True, check=True,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--text-layers", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as folder:
        model_gib = write_checkpoint(folder, args.text_layers)
        print(f"checkpoint: {model_gib:.2f} GiB bf16 in {folder}", flush=True)
        results = {"ours": [], "baseline": []}
        for i in range(args.repeats):
            for mode in results:
                results[mode].append(run(mode, folder))
                print(f"run {i} {mode}: {results[mode][-1]}", flush=True)
    med = {mode: {k: statistics.median(r[k] for r in rs) for k in ("peak_gib", "seconds")}
           for mode, rs in results.items()}
    ratio = med["ours"]["peak_gib"] / med["baseline"]["peak_gib"]
    print(f"peak host memory above imports (median of {args.repeats}): "
          f"streaming {med['ours']['peak_gib']:.2f} GiB ({med['ours']['peak_gib'] / model_gib:.2f}x "
          f"the model), read-all-first {med['baseline']['peak_gib']:.2f} GiB "
          f"({med['baseline']['peak_gib'] / model_gib:.2f}x); load time "
          f"{med['ours']['seconds']:.1f} s vs {med['baseline']['seconds']:.1f} s")
    print(json.dumps({"benchmark": "checkpoint_load", "ours": round(med["ours"]["peak_gib"], 3),
                      "baseline": round(med["baseline"]["peak_gib"], 3),
                      "ratio": round(ratio, 3), "unit": "GiB peak RSS above imports",
                      "model_gib": round(model_gib, 3),
                      "ours_seconds": round(med["ours"]["seconds"], 2),
                      "baseline_seconds": round(med["baseline"]["seconds"], 2)}))


if __name__ == "__main__":
    main()
