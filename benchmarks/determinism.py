"""The numeric pins (``ipr_train.determinism``): what they cost and what they hold.

``python -m benchmarks bench-determinism``: builds the quickstart's demonstrations and tiny
model (d=128, 2 layers, its word-level tokenizer), then trains it with the quickstart's SFT
settings (batch 4, lr 4e-3, cosine) for ``--steps`` optimizer steps, each setting in a fresh
process, side by side in one run:

* native: ``IPR_NUMERICS=native``, every library picks its kernels for this processor;
* pinned: the defaults (AVX2 kernels for torch and oneDNN, MKL's compatible reproducible
  branch, no dynamic threads), 2 threads;
* pinned with a process spinning on a core beside it; pinned with 1 thread;
* pinned but MKL on its AVX2 branch (``MKL_CBWR=AVX2,STRICT``), which MKL honours on Intel
  processors only: where the pins' cost comes from.

Reported: seconds per optimizer step of each, the training loop's alone (the median of
three runs for native and pinned), the pinned/native ratio, and whether each variant's
trained weights equal the pinned run's byte for byte (expected: the busy run's do;
native's, 1 thread's and the AVX2 branch's need not, since the kernels or the thread count
differ).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.results_io import write_results
from ipr_train.determinism import NATIVE_VAR, PINS, THREADS_VAR

TRAIN = """
import json, sys, time
import ipr_train
from ipr_train.config import SFTConfig
from ipr_train.sft import run_sft
cfg = SFTConfig.model_validate(json.loads(sys.argv[1]))
began = time.perf_counter()
result = run_sft(cfg)
print(json.dumps({"steps": result.steps, "seconds": time.perf_counter() - began}))
"""


def _prepare(folder: Path) -> tuple[str, str, int]:
    from ipr_train.quickstart import prepare, quickstart_config
    from ipr_train.records import read_trajectories

    raw = quickstart_config(folder)
    prepare(raw)
    return raw["model"], raw["experts"], len(read_trajectories(raw["experts"]))


def _train(model: str, data: str, epochs: float, out: Path, env: dict[str, str]) -> dict:
    cfg = {"model": model, "data": [data], "output_dir": str(out), "epochs": epochs,
           "learning_rate": 4e-3, "batch_size": 4, "lr_scheduler": "cosine",
           "warmup_ratio": 0.03, "max_length": 4096, "resume": False}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", TRAIN, json.dumps(cfg)], env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    times = [json.loads(line)["time"] for line in (out / "metrics.jsonl").open()]
    result["step_seconds"] = (times[-1] - times[0]) / (len(times) - 1)  # the loop alone
    weights = (out / "final" / "model.safetensors").read_bytes()
    result["sha256"] = hashlib.sha256(weights).hexdigest()
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench-determinism")
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps per run")
    args = parser.parse_args(argv)
    pins = (*PINS, THREADS_VAR, NATIVE_VAR)
    base = {k: v for k, v in os.environ.items() if k not in pins} | {"IPR_PROGRESS": "0"}
    settings = {
        "native": (dict(base, IPR_NUMERICS="native"), 3, False),
        "pinned": (base, 3, False),
        "pinned_busy": (base, 1, True),
        "pinned_1_thread": (dict(base, IPR_THREADS="1"), 1, False),
        "pinned_mkl_avx2": (dict(base, MKL_CBWR="AVX2,STRICT"), 1, False),
    }
    with tempfile.TemporaryDirectory() as tmp:
        model, data, n = _prepare(Path(tmp))
        epochs = args.steps * 4 / n
        runs: dict[str, list[dict]] = {}
        for name, (env, repeats, busy) in settings.items():
            spinner = None
            if busy:
                spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                runs[name] = [_train(model, data, epochs, Path(tmp, f"{name}{i}"), env)
                              for i in range(repeats)]  # fmt: skip
            finally:
                if spinner is not None:
                    spinner.kill()
                    spinner.wait()
            print(name, [round(r["seconds"], 1) for r in runs[name]], flush=True)
    step = {k: statistics.median(r["step_seconds"] for r in v) for k, v in runs.items()}
    reference = runs["pinned"][0]["sha256"]
    metrics: dict[str, float] = {"steps": float(runs["pinned"][0]["steps"]), "demonstrations": n}
    metrics |= {f"{k}.seconds_per_step": v for k, v in step.items()}
    metrics |= {
        f"{k}.weights_equal_pinned": float(all(r["sha256"] == reference for r in v))
        for k, v in runs.items()
    }
    ratios = {"pinned_over_native_step_time": step["pinned"] / step["native"]}
    write_results(
        "determinism",
        metrics,
        ratios,
        notes=(
            "The quickstart's SFT (d=128, 2 layers, batch 4, lr 4e-3, cosine) for the steps "
            "above from the same random model, each run a fresh process; seconds per step "
            "are the training loop's (from its per-step log: loading, encoding and saving "
            "left out), the median of 3 runs for native and pinned. weights_equal_pinned: 1 "
            "when every run of that setting wrote the same bytes as the first pinned run. Pinned = "
            "ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2, MKL_CBWR=COMPATIBLE,STRICT, "
            "MKL_DYNAMIC=OMP_DYNAMIC=FALSE, 2 threads (ipr_train/determinism.py); the thread "
            "count is part of the pins (MKL's compatible branch sums in another order on 1 "
            "thread), the load is not."
        ),
    )
    print(json.dumps({"metrics": metrics, "ratios": ratios}, indent=1))
    return 0
