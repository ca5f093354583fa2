"""Every method on one harness: one SFT model per env, then every method from it on the
same budget (tasks explored, iterations, samples) over several seeds, and the table of
average reward, success and cost per method (``ipr-train compare ENV``).

The SFT model is trained once (the demonstrations, a word-level tokenizer and a tiny
Llama built here, as in the quickstart) and evaluated once: greedy evaluation of one model
does not depend on the seed, so its row has no spread. Each method's run is an ordinary
``ipr-train run`` directory (``<out>/<method>/seed<k>``), resumable, with its report; it
starts with the SFT model's evaluation copied in, and IPR's ablations start with IPR's
first-iteration exploration and estimates copied in, and its pairs and reference where the
ablation keeps every pair kind (what they share with IPR by construction: they differ from
the pairs stage, a kind dropped, or the training stage, no SFT term, on), so each method's
cost columns still count everything it needs. A seed changes sampling (exploration, Monte
Carlo, groups) and the training data order; RFT retrains from the SFT model here
(``retrain: agent``) instead of the base, to fit the budget.
"""

from __future__ import annotations

import copy
import json
import shutil
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipr_train.progress import progress_bar, quiet_transformers

METHODS = (
    "rft", "eto", "ppo", "step_ppo", "ipr", "ipr_no_odpo", "ipr_no_sdpo", "ipr_no_sft",
    "stepagent_implicit", "stepagent_inverse", "grpo", "gigpo",
)  # fmt: skip
# IPR's ablations, as its release runs them: without a pair kind in the training data
# (--global_traj / --local_traj), or without the SFT term
ABLATIONS: dict[str, dict[str, Any]] = {
    "ipr_no_odpo": {"pair_kinds": ["step"]},
    "ipr_no_sdpo": {"pair_kinds": ["outcome"]},
    "ipr_no_sft": {"dpo": {"sft_weight": 0.0}},
}
NAMES = {
    "sft": "SFT", "rft": "RFT", "eto": "ETO", "ppo": "PPO", "step_ppo": "Step-PPO",
    "ipr": "IPR", "ipr_no_odpo": "IPR w/o o-DPO", "ipr_no_sdpo": "IPR w/o s-DPO",
    "ipr_no_sft": "IPR w/o SFT", "stepagent_implicit": "StepAgent-Implicit",
    "stepagent_inverse": "StepAgent-Inverse", "grpo": "GRPO", "gigpo": "GiGPO",
}  # fmt: skip


@dataclass(frozen=True)
class Budget:
    """What every method gets: the same tasks, iterations and samples."""

    sft_experts: int | None  # demonstrations for SFT (None: all)
    sft_epochs: float
    tasks: int  # expert tasks each method explores / plays per iteration
    iterations: int
    group_size: int  # episodes per task: PPO, Step-PPO, GRPO, GiGPO
    practice: int  # actions per expert prefix: StepAgent
    mc_samples: int  # Monte Carlo continuations: IPR, Step-PPO
    eval_tasks: int
    reply_tokens: int
    max_steps: int | None = None  # the env's step limit in exploration and evaluation
    seeds: tuple[int, ...] = (0, 1, 2)


@dataclass(frozen=True)
class EnvSpec:
    env_id: str
    train_split: str
    eval_splits: tuple[str, ...]
    source: str | None  # the demonstrator (None: the env's experts)
    full: Budget
    quick: Budget
    kwargs: dict[str, Any] = field(default_factory=dict)


# Full budgets sized so each comparison fits about an hour of this 2-core machine (measured:
# ALFWorld 47 min, InterCode 72 min, run side by side with one thread each). ALFWorld's 10
# steps and InterCode's 8 are below the envs' own limits (20, 10): the runs would otherwise
# take twice as long, and a d=128 model from scratch succeeds at neither.
ENVS = {
    "webshop": EnvSpec(
        "ipr/WebShop-v0", "train", ("test",), "first_result",
        full=Budget(None, 6.84, 6, 1, 4, 2, 3, 30, 40),
        quick=Budget(8, 50, 2, 1, 2, 2, 2, 3, 40, max_steps=6, seeds=(0,)),
    ),
    "alfworld": EnvSpec(
        "ipr/ALFWorld-v0", "train", ("valid_seen", "valid_unseen"), None,
        full=Budget(400, 2, 3, 1, 4, 2, 2, 10, 24, max_steps=10),
        quick=Budget(4, 10, 2, 1, 2, 2, 2, 1, 16, max_steps=6, seeds=(0,)),
    ),
    "intercode": EnvSpec(
        "ipr/InterCodeSQL-v0", "train", ("test",), None, kwargs={"backend": "sqlite"},
        full=Budget(None, 4, 6, 1, 4, 2, 3, 30, 48, max_steps=8),
        quick=Budget(4, 10, 2, 1, 2, 2, 2, 2, 32, max_steps=4, seeds=(0,)),
    ),
}  # fmt: skip


def base_config(spec: EnvSpec, budget: Budget, out: Path) -> dict[str, Any]:
    """The SFT run's config (IPR's keys; zero iterations) that every method's starts from."""
    env = {"id": spec.env_id, "kwargs": spec.kwargs, "max_steps": budget.max_steps}
    tokens = budget.reply_tokens
    return {
        "output_dir": str(out / "sft"),
        "model": str(out / "tiny-llama"),
        "experts": str(out / "experts.jsonl"),
        "env": {**env, "split": spec.train_split, "limit": budget.sft_experts},
        "explore_limit": budget.tasks,
        "sft": {"epochs": budget.sft_epochs, "learning_rate": 4e-3, "batch_size": 4,
                "lr_scheduler": "cosine", "warmup_ratio": 0.03, "max_length": 4096},
        "eval": [{**env, "split": s, "limit": budget.eval_tasks} for s in spec.eval_splits],
        "iterations": 0,
        "explore": {"max_new_tokens": tokens},
        "monte_carlo": {"n": budget.mc_samples, "max_new_tokens": tokens},
        "eval_generation": {"max_new_tokens": tokens},
        "dpo": {"epochs": 2, "learning_rate": 1e-4, "batch_size": 4, "beta": 0.1,
                "max_length": 4096, "max_prompt_tokens": 3072},
        "policy": {"backend": "hf", "device": "cpu", "batch_size": 16},
        "slots": 16,
    }  # fmt: skip


def method_config(
    base: dict[str, Any], method: str, seed: int, budget: Budget, sft_model: str, out: Path
) -> dict[str, Any]:
    """``method``'s config from the SFT run's: the SFT model as its start, the budget, the
    seed in every sampler and shuffle."""
    cfg = copy.deepcopy(base)
    name = "ipr" if method in ABLATIONS else method
    cfg.update(method=name, model=sft_model, sft=None, iterations=budget.iterations,
               output_dir=str(out / method / f"seed{seed}"))  # fmt: skip
    for key in ("explore", "monte_carlo", "eval_generation", "dpo"):
        cfg[key]["seed"] = seed
    for key, value in ABLATIONS.get(method, {}).items():
        cfg[key] = cfg[key] | value if isinstance(value, dict) else value
    if name == "eto":
        cfg["dpo"]["sft_weight"] = 0.0
    if name in ("ppo", "step_ppo", "grpo", "gigpo", "stepagent_inverse"):
        cfg["explore"]["temperature"] = 1.0
        cfg["update"] = {"learning_rate": 1e-4, "batch_size": 4, "max_length": 4096,
                         "max_prompt_tokens": 3072, "seed": seed}  # fmt: skip
    if name in ("ppo", "step_ppo", "grpo", "gigpo"):
        cfg["group_size"] = budget.group_size
    if name.startswith("stepagent"):
        cfg["explore"]["temperature"] = 1.0
        cfg["practice"] = budget.practice
    if name == "stepagent_inverse":
        cfg["discriminator"] = {"learning_rate": 1e-4, "batch_size": 4, "seed": seed}
    if name == "stepagent_implicit":
        cfg["dpo"]["sft_weight"] = 0.0
    if name == "rft":
        cfg.update(model=base["model"], sft_model=sft_model, retrain="agent",
                   sft={**base["sft"], "epochs": 1, "seed": seed}, success_reward=1.0)  # fmt: skip
    if name in ("eto", "rft", "stepagent_implicit", "ppo", "grpo", "gigpo",
                "stepagent_inverse"):  # fmt: skip
        cfg.pop("monte_carlo")
    return cfg


def _seed_run(run: Path, sft_run: Path, shared: Path | None) -> None:
    """Copy the SFT model's evaluation (and, for an ablation, IPR's stages it shares) into a
    method's fresh run directory; the run then resumes past them."""
    if run.exists():
        return
    run.mkdir(parents=True)
    for stage in ("experts", "iter_0/eval"):
        shutil.copytree(sft_run / stage, run / stage)
    if shared is not None:  # the pairs too where the ablation keeps every kind
        same_pairs = "pair_kinds" not in ABLATIONS[run.parent.name]
        for stage in ("explore", "step_rewards", *(("pairs", "reference") if same_pairs else ())):
            if (shared / "iter_1" / stage / "stats.json").is_file():
                shutil.copytree(shared / "iter_1" / stage, run / "iter_1" / stage)


def reuse_sft(run: Path, root: Path, base: dict[str, Any]) -> None:
    """Start the comparison's SFT run from another run's (the quickstart's, say): its
    demonstrations, tiny model, SFT and SFT evaluation, refused unless it trained and
    evaluated with the same settings."""
    import yaml

    from ipr_train.methods.ipr import IPRConfig

    theirs = IPRConfig.model_validate(yaml.safe_load((run / "config.yaml").read_text()))
    ours = IPRConfig.model_validate(base)
    for key in ("sft", "eval_generation", "policy", "slots"):
        if getattr(theirs, key) != getattr(ours, key):
            raise ValueError(f"{run}: its {key} settings differ from the comparison's")
    if (
        [e.model_dump(exclude={"kwargs"}) for e in theirs.eval]
        != [e.model_dump(exclude={"kwargs"}) for e in ours.eval]
        or theirs.env.id != ours.env.id
        or theirs.env.limit != ours.env.limit
    ):
        raise ValueError(f"{run}: its env or evaluation differ from the comparison's")
    if (root / "sft").exists():
        return
    model = Path(theirs.model)  # a relative path is the run's cwd's: try beside the run
    model = model if model.is_dir() else run.parent / model.name
    if not model.is_dir():
        raise ValueError(f"{run}: its base model {theirs.model} is not there")
    shutil.copy(run / "experts" / "experts.jsonl", root / "experts.jsonl")
    shutil.copytree(model, root / "tiny-llama")
    for stage in ("experts", "sft", "iter_0/eval"):
        shutil.copytree(run / stage, root / "sft" / stage)


def run_method(raw: dict[str, Any]) -> list[dict[str, Any]]:
    from ipr_train.methods import method_of

    cls, run = method_of(raw)
    rows: list[dict[str, Any]] = run(cls.model_validate(raw))
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A finished run's last evaluation per split and its training cost (every iteration
    after the SFT model's: policy calls, generated tokens, env steps, seconds but
    evaluation's)."""
    last = rows[-1]
    scores = {r["split"]: {"reward": r["avg_reward"], "success": r["success_rate"]}
              for r in last["eval"]}  # fmt: skip
    cost = {"policy_calls": 0, "generated_tokens": 0, "env_steps": 0, "seconds": 0.0}
    for row in rows[1:]:
        for key in ("policy_calls", "generated_tokens", "env_steps"):
            cost[key] += row["cost"].get(key, 0)
        cost["seconds"] += sum(v for k, v in row["seconds"].items() if k != "eval")
    return {"scores": scores, "cost": cost}


def compare(
    env: str, out: str | Path, *, quick: bool = False, methods: Sequence[str] = METHODS,
    seeds: Sequence[int] | None = None, results_dir: str | Path | None = None,
    data_dir: str | None = None, sft_from: str | Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Run (or resume) the comparison on ``env``; the results (and, with ``results_dir``,
    the table in ``<results_dir>/compare_<env>[_quick].{json,md}``)."""
    from ipr_train.methods.ipr import IPRConfig, IPRRun
    from ipr_train.quickstart import prepare

    spec = ENVS[env]
    budget = spec.quick if quick else spec.full
    seeds = tuple(budget.seeds if seeds is None else seeds)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {list(METHODS)}")
    quiet_transformers()
    root = Path(out)
    base = base_config(spec, budget, root)
    if data_dir is not None:
        base["data_dir"] = data_dir
    began = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    if sft_from is not None:
        reuse_sft(Path(sft_from), root, base)
    prepare(base, hidden=128, layers=2, source=spec.source, data_dir=data_dir)
    sft_rows = IPRRun(IPRConfig.model_validate(base)).run()
    sft_run = root / "sft"
    sft_model = str(sft_run / "sft" / "final")
    results: dict[str, Any] = {"sft": {"seeds": {0: summarise(sft_rows)}}}
    with progress_bar(len(methods) * len(seeds), f"compare {env}") as bar:
        for seed in seeds:
            for method in methods:
                raw = method_config(base, method, seed, budget, sft_model, root)
                shared = root / "ipr" / f"seed{seed}" if method in ABLATIONS else None
                _seed_run(Path(raw["output_dir"]), sft_run, shared)
                rows = run_method(raw)
                results.setdefault(method, {"seeds": {}})["seeds"][seed] = summarise(rows)
                bar.update(1)
    clock = root / "seconds.json"  # summed over the invocations of a resumed comparison
    seconds = (json.loads(clock.read_text()) if clock.is_file() else 0.0) + (
        time.perf_counter() - began
    )
    clock.write_text(json.dumps(seconds))
    record = {"env": spec.env_id, "quick": quick, "budget": budget.__dict__,
              "sft_from": None if sft_from is None else str(sft_from),
              "seconds": round(seconds, 1),
              "sft_seconds": {k: v for k, v in sft_rows[0]["seconds"].items()},
              "methods": {m: _aggregate(r) for m, r in results.items()}}  # fmt: skip
    (root / "compare.json").write_text(json.dumps(record, indent=1))
    if results_dir is not None:
        write_comparison(env, record, Path(results_dir))
    return record


def _aggregate(result: dict[str, Any]) -> dict[str, Any]:
    runs = list(result["seeds"].values())
    splits = list(runs[0]["scores"])
    out: dict[str, Any] = {"seeds": len(runs)}
    for split in splits:
        for what in ("reward", "success"):
            values = [r["scores"][split][what] for r in runs]
            out[f"{split}_{what}"] = statistics.mean(values)
            out[f"{split}_{what}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    for key in runs[0]["cost"]:
        out[key] = statistics.mean(r["cost"][key] for r in runs)
    return out


def comparison_markdown(env: str, record: dict[str, Any]) -> str:
    from ipr_train.evaluate import PAPER_SPLIT_NAMES

    methods = record["methods"]
    splits = [k.removesuffix("_reward") for k in methods["sft"]
              if k.endswith("_reward")]  # fmt: skip
    b = record["budget"]
    steps = "" if b["max_steps"] is None else f", at most {b['max_steps']} steps"
    reused = (
        ""
        if not record.get("sft_from")
        else f" (its SFT and SFT evaluation taken from {record['sft_from']}, same settings)"
    )
    head = ["method"]
    for s in splits:
        name = PAPER_SPLIT_NAMES.get(s, s)
        head += [f"{name} avg reward", f"{name} success"]
    head += ["policy calls", "generated tokens", "env steps", "train seconds"]
    lines = [
        f"# Every method on {record['env']}{' (quick)' if record['quick'] else ''}",
        "",
        f"Budget: SFT on {b['sft_experts'] or 'all'} demonstrations ({b['sft_epochs']} epochs, "
        f"once); then per method and seed {b['iterations']} iteration(s) on {b['tasks']} "
        f"expert tasks: {b['group_size']} episodes per task (PPO, Step-PPO, GRPO, GiGPO), "
        f"{b['practice']} actions per expert prefix (StepAgent), {b['mc_samples']} Monte "
        f"Carlo continuations (IPR, Step-PPO); evaluation on {b['eval_tasks']} tasks per "
        f"split, greedy, {b['reply_tokens']} tokens per reply"
        f"{steps}; "
        f"seeds {b['seeds']}. Mean ± standard deviation over seeds; cost is per run "
        "(SFT's shared cost apart), train seconds exclude evaluation. "
        f"The whole comparison took {record['seconds'] / 60:.1f} min"
        f"{reused}.",
        "",
        "| " + " | ".join(head) + " |",
        "|---|" + "---:|" * (len(head) - 1),
    ]
    for method, m in methods.items():
        cells = [NAMES[method]]
        for s in splits:
            cells += [f"{m[f'{s}_reward']:.3f} ± {m[f'{s}_reward_std']:.3f}",
                      f"{m[f'{s}_success']:.1%} ± {m[f'{s}_success_std']:.1%}"]  # fmt: skip
        cells += [f"{m['policy_calls']:.0f}", f"{m['generated_tokens']:.0f}",
                  f"{m['env_steps']:.0f}", f"{m['seconds']:.0f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_comparison(env: str, record: dict[str, Any], results: Path) -> Path:
    """``compare_<env>[_quick].{json,md}`` in ``results``, the benchmarks' record layout."""
    import datetime

    from ipr_train.records import write_text

    name = f"compare_{env}{'_quick' if record['quick'] else ''}"
    sft = record["methods"]["sft"]
    first = next(k for k in sft if k.endswith("_reward"))
    ratios = {f"{m}_{first}_vs_sft": (v[first] / sft[first] if sft[first] else None)
              for m, v in record["methods"].items() if m != "sft"}  # fmt: skip
    body = {"benchmark": name, "date": datetime.date.today().isoformat(),
            "machine": _machine(), "metrics": record, "ratios": ratios}  # fmt: skip
    write_text(results / f"{name}.json", json.dumps(body, indent=1))
    write_text(results / f"{name}.md", comparison_markdown(env, record))
    return results / f"{name}.json"


def _machine() -> str:
    import os
    import platform

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
