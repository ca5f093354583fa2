"""Two IPR iterations of the quickstart on a GPU with vLLM generation, timed per stage.

``python -m benchmarks bench-gpu_iteration`` (on a machine with a GPU and ``ipr[vllm]``):
the quickstart's config, but a randomly initialised ~0.5 B-parameter Llama (1,280 wide, 24
layers, the quickstart's word-level tokenizer) saved to disk, generation through vLLM (``n``
samples per request, prefix caching on; one engine per generating stage, each in a process
of its own that ends with the stage, so it always holds the current agent's weights and the
training that follows gets the GPU's memory back), training on the GPU. Writes the wall time
of every stage and the generation / env / training shares to
``benchmarks/results/gpu_iteration``.
The numbers say what the pipeline costs at this size, not what the model learns (it is
random).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.results_io import write_results


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench-gpu_iteration", description=__doc__)
    parser.add_argument("--output-dir", default="runs/gpu_iteration")
    parser.add_argument("--hidden", type=int, default=1280)
    parser.add_argument("--layers", type=int, default=24)
    args = parser.parse_args(argv)
    import torch

    from ipr_train.experts import build_experts
    from ipr_train.methods.ipr import IPRConfig, run_ipr
    from ipr_train.quickstart import ENV, quickstart_config
    from ipr_train.records import read_trajectories, write_jsonl
    from ipr_train.tiny import build_model, build_word_tokenizer

    if not torch.cuda.is_available():
        print("bench-gpu_iteration needs a GPU (torch.cuda.is_available() is False)")
        return 2
    out = Path(args.output_dir)
    raw = quickstart_config(out)
    raw["iterations"] = 2
    raw["policy"] = {
        "backend": "vllm",
        "gpu_memory_utilization": 0.5,  # the engine's process ends before training starts
        "max_model_len": 4096,
        "enforce_eager": False,
    }
    raw["sft"]["mixed_precision"] = "bf16"
    raw["dpo"]["mixed_precision"] = "bf16"
    experts = Path(raw["experts"])
    if not experts.is_file():
        write_jsonl(experts, build_experts(ENV, "train")[0])
    model_dir = Path(raw["model"])
    if not model_dir.is_dir():
        tokenizer = build_word_tokenizer(
            t.content for e in read_trajectories(experts) for t in e.turns
        )
        model = build_model(tokenizer, hidden=args.hidden, layers=args.layers, context=4096)
        model.save_pretrained(model_dir)
        tokenizer.save_pretrained(model_dir)
    began = time.perf_counter()
    run_ipr(IPRConfig.model_validate(raw))
    total = time.perf_counter() - began
    run = Path(raw["output_dir"])
    metrics: dict[str, float] = {"total_seconds": round(total, 1)}
    generation = env = 0.0
    for stats in sorted(run.rglob("stats.json")):
        stage = stats.parent.relative_to(run).as_posix()
        values = json.loads(stats.read_text())
        metrics[f"{stage}.seconds"] = values["seconds"]
        generation += values.get("generation_seconds", 0.0)
        env += values.get("env_seconds", 0.0)
    training = sum(v for k, v in metrics.items() if k == "sft.seconds"
                   or k.endswith("/train.seconds"))  # fmt: skip
    ratios = {
        "generation share": generation / total,
        "env share": env / total,
        "training share": training / total,
    }
    write_results(
        "gpu_iteration",
        metrics,
        ratios,
        f"{args.hidden} wide, {args.layers} layers, random weights, vLLM generation",
    )
    return 0
