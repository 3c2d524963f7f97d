"""Checkpoint load time with validation against the previous, unvalidated loader (same run).

The validated loader (``tl_bilinear.load``) reads the safetensors header and compares every
tensor's shape with the model's before loading; the baseline is the loader before that check
(config.json, HookedTransformer, ``load_file``, ``load_state_dict``), inlined here. Both load
the same ts-small checkpoint (with a 4096-token tokenizer) in alternation; the medians and
their ratio are printed with the CPU model, its ISA flags and the load average.

    python benchmarks/bench_load.py            # ~1 minute on 2 cores
    python benchmarks/bench_load.py --repeats 21 --preset ts-medium
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from safetensors.torch import load_file
from transformer_lens import HookedTransformer
from transformers import AutoTokenizer

import tl_bilinear
from tl_bilinear.checkpoint import config_from_json, resolve_checkpoint
from tl_bilinear.data import iter_documents, train_tokenizer


def baseline_load(path: Path) -> HookedTransformer:
    """The loader before validation: no header check, no tokenizer size check."""
    directory = resolve_checkpoint(path)
    meta = json.loads((directory / "config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(str(directory / meta["tokenizer"]))
    model = HookedTransformer(config_from_json(meta["model_config"]), tokenizer=tokenizer, move_to_device=True)
    model.load_state_dict(load_file(str(directory / "model.safetensors"), device="cpu"), strict=False)
    return model.eval()


def cpu() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    isa = [f for f in flags if f.startswith(("avx", "amx", "fma"))]
    return f"{name or platform.processor()} [{' '.join(isa)}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="ts-small")
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    tokenizer = train_tokenizer(
        iter_documents("builtin"), vocab_size=4096, out_dir=tmp / "tok", max_documents=3000, show_progress=False
    )
    model = tl_bilinear.make_model(args.preset, d_vocab=len(tokenizer), seed=0)
    path = tl_bilinear.save(model, tmp / "ckpt", tokenizer=tokenizer)
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {"baseline": [], "validated": []}
    for _ in range(args.repeats):
        for name, load in (("baseline", baseline_load), ("validated", tl_bilinear.load)):
            start = time.perf_counter()
            load(path)
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"cpu: {cpu()}; preset {args.preset}, {args.repeats} repeats of each, alternating")
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    for name, value in median.items():
        print(f"{name:10s} median {value * 1e3:8.1f} ms  (min {min(times[name]) * 1e3:.1f} ms)")
    print(f"ratio validated / baseline (medians): {median['validated'] / median['baseline']:.3f}")


if __name__ == "__main__":
    main()
