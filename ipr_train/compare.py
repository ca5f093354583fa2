"""Every method on one harness: one SFT model per env, then every method from it on the
same budget over several seeds, and the table of average reward with its confidence
interval, significance against SFT and against the SFT-continued control, the training
signal each method got and its cost (``ipr-train compare ENV``; ``compare_table``).

The budget rule (``Budget``, ``training``): the same SFT model, expert tasks, iterations
and samples per task for every method, and the same optimizer steps per iteration, learning
rate and schedule for every method that trains, whatever the size of its data (the data is
cycled); the SFT-continued control spends those steps on the demonstrations alone, so a gain
from more training is not read as a gain from a method. RFT fine-tunes the agent (``retrain:
agent``), not the base model, to fit the same budget.

The SFT model is trained once (the demonstrations, a word-level tokenizer and a tiny Llama
built here, as in the quickstart, sized by ``EnvSpec.model``) and evaluated once: greedy
evaluation of one model does not depend on the seed. A seed changes every sampler of a
method: Monte Carlo continuations (IPR, Step-PPO), the episodes of RFT, PPO, Step-PPO,
GRPO, GiGPO and StepAgent (temperature 1), and the training data order; IPR's and ETO's
exploration is greedy by definition (their releases explore at temperature 0), so for them
a seed changes the Monte Carlo estimates and the data order only. Each method's run is an
ordinary ``ipr-train run`` directory (``<out>/<method>/seed<k>``), resumable, with its
report; it starts with the SFT model's evaluation copied in, and IPR's ablations start
with IPR's first-iteration exploration and estimates copied in, and its pairs and
reference where the ablation keeps every pair kind (what they share with IPR by
construction: they differ from the pairs stage, a kind dropped, or the training stage, no
SFT term, on), so each method's cost columns still count everything it needs.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipr_train.compare_table import aggregate, summarise, write_comparison
from ipr_train.progress import progress_bar, quiet_transformers

METHODS = (
    "sft_continued", "rft", "eto", "ppo", "step_ppo", "ipr", "ipr_no_odpo", "ipr_no_sdpo",
    "ipr_no_sft", "stepagent_implicit", "stepagent_inverse", "grpo", "gigpo",
)  # fmt: skip
# IPR's ablations, as its release runs them: without a pair kind in the training data
# (--global_traj / --local_traj), or without the SFT term
ABLATIONS: dict[str, dict[str, Any]] = {
    "ipr_no_odpo": {"pair_kinds": ["step"]},
    "ipr_no_sdpo": {"pair_kinds": ["outcome"]},
    "ipr_no_sft": {"dpo": {"sft_weight": 0.0}},
}
NAMES = {
    "sft": "SFT", "sft_continued": "SFT continued", "rft": "RFT", "eto": "ETO", "ppo": "PPO",
    "step_ppo": "Step-PPO",
    "ipr": "IPR", "ipr_no_odpo": "IPR w/o o-DPO", "ipr_no_sdpo": "IPR w/o s-DPO",
    "ipr_no_sft": "IPR w/o SFT", "stepagent_implicit": "StepAgent-Implicit",
    "stepagent_inverse": "StepAgent-Inverse", "grpo": "GRPO", "gigpo": "GiGPO",
}  # fmt: skip


@dataclass(frozen=True)
class Budget:
    """What every method gets: the same SFT model, tasks, iterations, samples and optimizer
    steps; what the evaluation covers."""

    sft_experts: int | None  # demonstrations for SFT (None: all)
    sft_epochs: float
    tasks: int  # expert tasks each method explores / plays per iteration
    iterations: int
    group_size: int  # episodes per task: RFT, PPO, Step-PPO, GRPO, GiGPO
    practice: int  # actions per expert prefix: StepAgent
    mc_samples: int  # Monte Carlo continuations: IPR, Step-PPO
    eval_tasks: int | None  # per split (None: every test task)
    reply_tokens: int
    train_steps: int  # optimizer steps per iteration, for every method that trains
    learning_rate: float = 1e-4  # every method's, constant with 10% warmup, batch 4
    max_steps: int | None = None  # the env's step limit in exploration and evaluation
    seeds: tuple[int, ...] = (0, 1, 2)
    intermediate_eval_tasks: int | None = None  # iterations before the last (None: all)
    # (split, "reward" or "success", value) the SFT model must reach for the methods to run
    sft_target: tuple[str, str, float] | None = None


@dataclass(frozen=True)
class EnvSpec:
    env_id: str
    train_split: str
    eval_splits: tuple[str, ...]
    source: str | None  # the demonstrator (None: the env's experts)
    full: Budget
    quick: Budget
    kwargs: dict[str, Any] = field(default_factory=dict)
    model: tuple[int, int] = (128, 2)  # the tiny Llama's width and layers (full budget)


# Full budgets: WebShop's is the one sized to let methods differ (100 tasks, 2 iterations,
# every test goal). ALFWorld's and InterCode's first train a larger SFT (more
# demonstrations or epochs than before, ALFWorld's model 4 layers deep; the envs' own step
# limits, 20 and 10) and run the methods only if it reaches the target
# (``short_of_target``): a model that never succeeds gives no method anything to learn
# from. The quick budgets are CI's.
ENVS = {
    "webshop": EnvSpec(
        "ipr/WebShop-v0", "train", ("test",), "first_result",
        full=Budget(None, 6.84, tasks=100, iterations=2, group_size=4, practice=2,
                    mc_samples=3, eval_tasks=None, reply_tokens=40, train_steps=24,
                    intermediate_eval_tasks=30),
        quick=Budget(8, 35, tasks=4, iterations=1, group_size=2, practice=2, mc_samples=2,
                     eval_tasks=3, reply_tokens=40, train_steps=2, max_steps=6, seeds=(0,)),
    ),
    "alfworld": EnvSpec(
        "ipr/ALFWorld-v0", "train", ("valid_seen", "valid_unseen"), None, model=(128, 4),
        full=Budget(1000, 3, tasks=3, iterations=1, group_size=4, practice=2, mc_samples=2,
                    eval_tasks=None, reply_tokens=24, train_steps=8,
                    sft_target=("valid_seen", "success", 0.05)),
        quick=Budget(4, 10, tasks=2, iterations=1, group_size=2, practice=2, mc_samples=2,
                     eval_tasks=1, reply_tokens=16, train_steps=2, max_steps=6, seeds=(0,)),
    ),
    "intercode": EnvSpec(
        "ipr/InterCodeSQL-v0", "train", ("test",), None, kwargs={"backend": "sqlite"},
        full=Budget(None, 6, tasks=6, iterations=1, group_size=4, practice=2, mc_samples=3,
                    eval_tasks=None, reply_tokens=48, train_steps=8,
                    sft_target=("test", "reward", 0.05)),
        quick=Budget(4, 10, tasks=2, iterations=1, group_size=2, practice=2, mc_samples=2,
                     eval_tasks=2, reply_tokens=32, train_steps=2, max_steps=4, seeds=(0,)),
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
        "intermediate_eval_limit": budget.intermediate_eval_tasks,
        "iterations": 0,
        "explore": {"max_new_tokens": tokens},
        "monte_carlo": {"n": budget.mc_samples, "max_new_tokens": tokens},
        "eval_generation": {"max_new_tokens": tokens},
        "dpo": {"epochs": 2, "learning_rate": 1e-4, "batch_size": 4, "beta": 0.1,
                "max_length": 4096, "max_prompt_tokens": 3072},
        "policy": {"backend": "hf", "device": "cpu", "batch_size": 16},
        "slots": 16,
    }  # fmt: skip


def training(budget: Budget, seed: int) -> dict[str, Any]:
    """The training settings every method gets per iteration (the budget rule)."""
    return {"max_steps": budget.train_steps, "learning_rate": budget.learning_rate,
            "batch_size": 4, "lr_scheduler": "constant_with_warmup", "warmup_ratio": 0.1,
            "max_length": 4096, "seed": seed}  # fmt: skip


def method_config(
    base: dict[str, Any], method: str, seed: int, budget: Budget, sft_model: str, out: Path
) -> dict[str, Any]:
    """``method``'s config from the SFT run's: the SFT model as its start, the budget (the
    same optimizer steps, learning rate and schedule for every method), the seed in every
    sampler and shuffle."""
    cfg = copy.deepcopy(base)
    name = "ipr" if method in ABLATIONS else method
    cfg.update(method=name, model=sft_model, sft=None, iterations=budget.iterations,
               output_dir=str(out / method / f"seed{seed}"))  # fmt: skip
    for key in ("explore", "monte_carlo", "eval_generation"):
        cfg[key]["seed"] = seed
    cfg["dpo"] = {**cfg["dpo"], **training(budget, seed)}
    for key, value in ABLATIONS.get(method, {}).items():
        cfg[key] = cfg[key] | value if isinstance(value, dict) else value
    if name == "eto":
        cfg["dpo"]["sft_weight"] = 0.0
    if name in ("ppo", "step_ppo", "grpo", "gigpo", "stepagent_inverse"):
        cfg["explore"]["temperature"] = 1.0
        cfg["update"] = {**training(budget, seed), "max_prompt_tokens": 3072}
    if name in ("ppo", "step_ppo", "grpo", "gigpo"):
        cfg["group_size"] = budget.group_size
    if name.startswith("stepagent"):
        cfg["explore"]["temperature"] = 1.0
        cfg["practice"] = budget.practice
    if name == "stepagent_inverse":
        cfg["discriminator"] = {"learning_rate": 1e-4, "batch_size": 4, "seed": seed}
    if name == "stepagent_implicit":
        cfg["dpo"]["sft_weight"] = 0.0
    if name in ("rft", "sft_continued"):  # fine-tuning from the agent, on the budget
        cfg.update(model=base["model"], sft_model=sft_model, sft=training(budget, seed))
    if name == "rft":
        cfg.update(retrain="agent", success_reward=1.0, samples=budget.group_size)
        cfg["explore"]["temperature"] = 1.0
    from ipr_train.methods import methods

    config_class: Any = methods()[name][0]
    fields = config_class.model_fields  # the method's own sections, no other's
    return {key: value for key, value in cfg.items() if key in fields}


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


def short_of_target(budget: Budget, sft: dict[str, Any]) -> dict[str, Any] | None:
    """Where the SFT model misses the budget's target, what it reached: every method starts
    from that model, and one that (almost) never succeeds gives the methods nothing to learn
    from, so their rows would be a column of zeros, not a comparison."""
    if budget.sft_target is None:
        return None
    split, measure, target = budget.sft_target
    value = sft["scores"][split][measure]
    if value >= target:
        return None
    return {"split": split, "measure": measure, "target": target, "value": value}


def run_method(raw: dict[str, Any]) -> list[dict[str, Any]]:
    from ipr_train.methods import method_of

    cls, run = method_of(raw)
    rows: list[dict[str, Any]] = run(cls.model_validate(raw))
    return rows


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
    hidden, layers = (128, 2) if quick else spec.model
    prepare(base, hidden=hidden, layers=layers, source=spec.source, data_dir=data_dir)
    built = json.loads((root / "tiny-llama" / "config.json").read_text())
    if (built["hidden_size"], built["num_hidden_layers"]) != (hidden, layers):
        raise ValueError(
            f"{root}: its model has width {built['hidden_size']} and "
            f"{built['num_hidden_layers']} layers, the comparison's {hidden} and {layers}; "
            "use a new --output-dir (or remove this one) to start over"
        )
    sft_rows = IPRRun(IPRConfig.model_validate(base)).run()
    sft_run = root / "sft"
    sft_model = str(sft_run / "sft" / "final")
    results: dict[str, Any] = {"sft": {"seeds": {0: summarise(sft_rows, sft_run)}}}
    clock = root / "seconds.json"  # summed over the invocations of a resumed comparison
    before = json.loads(clock.read_text()) if clock.is_file() else 0.0

    def tick() -> float:  # after every run, so a comparison killed later keeps its time
        seconds = before + time.perf_counter() - began
        clock.write_text(json.dumps(seconds))
        return seconds

    tick()
    short = short_of_target(budget, results["sft"]["seeds"][0])
    if short is not None:
        methods = ()
        print(f"compare {env}: the SFT model's {short['split']} {short['measure']} is "
              f"{short['value']:.3f}, below the target {short['target']}; no method runs",
              file=sys.stderr)  # fmt: skip
    with progress_bar(len(methods) * len(seeds), f"compare {env}") as bar:
        for seed in seeds:
            for method in methods:
                raw = method_config(base, method, seed, budget, sft_model, root)
                shared = root / "ipr" / f"seed{seed}" if method in ABLATIONS else None
                _seed_run(Path(raw["output_dir"]), sft_run, shared)
                rows = run_method(raw)
                summary = summarise(rows, raw["output_dir"])
                results.setdefault(method, {"seeds": {}})["seeds"][seed] = summary
                bar.update(1)
                tick()
    seconds = tick()
    record = {"env": spec.env_id, "quick": quick, "budget": budget.__dict__,
              "model": {"hidden": hidden, "layers": layers},
              "sft_from": None if sft_from is None else str(sft_from),
              "seconds": round(seconds, 1),
              "sft_seconds": {k: v for k, v in sft_rows[0]["seconds"].items()},
              "methods": aggregate(results), "short_of_target": short}  # fmt: skip
    (root / "compare.json").write_text(json.dumps(record, indent=1))
    if results_dir is not None:
        write_comparison(env, record, Path(results_dir), NAMES)
    return record
