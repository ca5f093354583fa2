"""The comparison's table: each method's runs (one per seed) summarised, aggregated with a
95% bootstrap interval over tasks x seeds and paired tests against SFT and against the
SFT-continued control, and written as ``compare_<env>[_quick].{json,md}``.

A run's summary is its last evaluation, task by task, and what its iterations cost and
got to learn from (``ipr_train.methods.base.SIGNAL_KEYS`` and ``COST_KEYS``, summed over
iterations). A method whose runs received no training signal shows "no signal" in place of
its reward: its model is the SFT model moved by nothing the method contributes.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from ipr_train.significance import bootstrap_interval, paired_test

ALPHA = 0.05
CONTROL = "sft_continued"


def summarise(rows: list[dict[str, Any]], run_dir: str | Path) -> dict[str, Any]:
    """A finished run's last evaluation (per split: the mean reward and success, and each
    task's reward) and its iterations' summed cost and signal (every iteration after the
    SFT model's; seconds without evaluation)."""
    from ipr_train.methods.base import COST_KEYS, SIGNAL_KEYS, add_cost
    from ipr_train.records import read_trajectories

    last = rows[-1]
    folder = Path(run_dir) / f"iter_{last['iteration']}" / "eval"
    scores = {}
    for r in last["eval"]:
        episodes = read_trajectories(folder / f"{r['env_id'].split('/')[-1]}_{r['split']}.jsonl")
        scores[r["split"]] = {"reward": r["avg_reward"], "success": r["success_rate"],
                              "tasks": {str(e.task): e.reward for e in episodes}}  # fmt: skip
    cost: dict[str, Any] = dict.fromkeys((*SIGNAL_KEYS, *COST_KEYS), 0)
    cost["seconds"] = 0.0
    for row in rows[1:]:
        add_cost(cost, row["cost"])
        cost["seconds"] += sum(v for k, v in row["seconds"].items() if k != "eval")
    return {"scores": scores, "cost": cost}


def _per_task(runs: list[dict[str, Any]], split: str) -> dict[str, list[float]]:
    """Each task's rewards, one per run (seed), over the tasks every run evaluated."""
    tasks = set.intersection(*(set(r["scores"][split]["tasks"]) for r in runs))
    return {t: [r["scores"][split]["tasks"][t] for r in runs] for t in sorted(tasks)}


def aggregate(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per method: per split the mean reward with its 95% interval, the mean success, the
    p-values of the paired tests against SFT and the control; the runs' mean cost, the
    total signal over seeds and how many seeds got none."""
    from ipr_train.methods.base import SIGNAL_KEYS

    out: dict[str, dict[str, Any]] = {}
    for method, result in results.items():
        runs = list(result["seeds"].values())
        m: dict[str, Any] = {"seeds": len(runs)}
        for split in runs[0]["scores"]:
            tasks = _per_task(runs, split)
            mean, low, high = bootstrap_interval(list(tasks.values()))
            m[f"{split}_reward"], m[f"{split}_low"], m[f"{split}_high"] = mean, low, high
            m[f"{split}_success"] = statistics.mean(r["scores"][split]["success"] for r in runs)
            m[f"{split}_tasks"] = len(tasks)
            for other in ("sft", CONTROL):
                if other == method or other not in results:
                    continue
                theirs = _per_task(list(results[other]["seeds"].values()), split)
                common = sorted(set(tasks) & set(theirs))
                m[f"{split}_p_vs_{other}"] = paired_test(
                    [statistics.mean(tasks[t]) for t in common],
                    [statistics.mean(theirs[t]) for t in common],
                )
        costs = [r["cost"] for r in runs]
        for key, value in costs[0].items():
            if isinstance(value, str):
                m[key] = value
            elif key in SIGNAL_KEYS:
                m[key] = sum(c[key] for c in costs)  # totals over seeds
            else:
                m[key] = statistics.mean(c.get(key, 0) for c in costs)
        m["seeds_without_signal"] = sum(c["signal"] == 0 for c in costs)
        out[method] = m
    return out


def _reward_cell(m: dict[str, Any], split: str, method: str) -> str:
    if method != "sft" and m["seeds_without_signal"] == m["seeds"]:
        return "no signal"
    marks = "".join(mark for other, mark in (("sft", "*"), (CONTROL, "†"))
                    if m.get(f"{split}_p_vs_{other}", 1.0) < ALPHA)  # fmt: skip
    return f"{m[f'{split}_reward']:.3f} [{m[f'{split}_low']:.3f}, {m[f'{split}_high']:.3f}]{marks}"


def _p(m: dict[str, Any], key: str) -> str:
    return "-" if key not in m else f"{m[key]:.3f}"


def comparison_markdown(record: dict[str, Any], names: dict[str, str]) -> str:
    from ipr_train.evaluate import PAPER_SPLIT_NAMES
    from ipr_train.report import signal_text

    methods = record["methods"]
    splits = [k.removesuffix("_reward") for k in methods["sft"] if k.endswith("_reward")]
    b = record["budget"]
    limit = b["max_steps"]
    steps = ", the env's own step limit" if limit is None else f", at most {limit} env steps"
    reused = ("" if not record.get("sft_from")
              else f" (its SFT and SFT evaluation taken from {record['sft_from']}, same "
              "settings)")  # fmt: skip
    head = ["method"]
    for s in splits:
        name = PAPER_SPLIT_NAMES.get(s, s)
        head += [f"{name} avg reward [95% CI]", f"{name} success", f"{name} p vs SFT",
                 f"{name} p vs SFT continued"]  # fmt: skip
    head += ["training signal (all seeds)", "optimizer steps", "trained tokens",
             "policy calls", "generated tokens", "env steps", "train seconds"]  # fmt: skip
    tasks = ", ".join(f"{methods['sft'][f'{s}_tasks']} {PAPER_SPLIT_NAMES.get(s, s)}"
                      for s in splits)  # fmt: skip
    model = record.get("model")
    size = "" if model is None else f"width {model['hidden']}, {model['layers']} layers, "
    short = record.get("short_of_target")
    shown = "{:.1%}" if short and short["measure"] == "success" else "{:.3f}"
    verdict = [] if short is None else [
        f"**Not informative at this scale.** The SFT model's {short['measure']} on "
        f"{PAPER_SPLIT_NAMES.get(short['split'], short['split'])} is "
        f"{shown.format(short['value'])}, below the {shown.format(short['target'])} the "
        "comparison needs, so no method was run: each "
        "starts from this model, and episodes that (almost) never succeed leave the methods "
        "(almost) nothing to learn from; their rows would be a column of zeros, not a "
        "comparison. The budget below is what the methods would have got.",
        "",
    ]  # fmt: skip
    lines = [
        f"# Every method on {record['env']}{' (quick)' if record['quick'] else ''}",
        "",
        *verdict,
        f"Budget rule: one SFT model ({size}{b['sft_experts'] or 'all'} demonstrations, "
        f"{b['sft_epochs']} epochs), then per method and seed {b['iterations']} "
        f"iteration(s) from it on {b['tasks']} expert tasks; every method that trains takes "
        f"{b['train_steps']} optimizer steps per iteration (batch 4, lr {b['learning_rate']}, "
        "constant with 10% warmup), whatever its data, and the SFT-continued control takes "
        "the same steps on the demonstrations alone. Sampling: "
        f"{b['group_size']} episodes per task (RFT, PPO, Step-PPO, GRPO, GiGPO; temperature "
        f"1), {b['practice']} actions per expert prefix (StepAgent), {b['mc_samples']} Monte "
        "Carlo continuations (IPR, Step-PPO); IPR's and ETO's exploration is greedy by "
        f"definition. Evaluation: greedy, {tasks} tasks (every final model; "
        f"{b.get('intermediate_eval_tasks') or 'all'} for earlier iterations), "
        f"{b['reply_tokens']} tokens per reply{steps}; seeds {tuple(b['seeds'])}, each "
        "varying every sampler and the data order.",
        "",
        "Reward: mean over tasks and seeds with a 95% bootstrap interval (tasks and seeds "
        "resampled); p: paired sign-flip test over tasks (seeds pooled); * significant "
        f"against SFT, † against the SFT-continued control (p < {ALPHA}). Cost is the mean "
        'per run (SFT\'s shared cost apart), train seconds exclude evaluation. "no signal": '
        "no run of the method got anything to learn from. "
        f"The whole comparison took {record['seconds'] / 60:.1f} min{reused}.",
        "",
        "| " + " | ".join(head) + " |",
        "|---|" + "---:|" * (len(head) - 1),
    ]
    for method, m in methods.items():
        cells = [names[method]]
        for s in splits:
            cells += [_reward_cell(m, s, method), f"{m[f'{s}_success']:.1%}",
                      _p(m, f"{s}_p_vs_sft"), _p(m, f"{s}_p_vs_{CONTROL}")]  # fmt: skip
        if method == "sft":
            signal = "-"
        else:
            signal = signal_text(m)
            if 0 < m["seeds_without_signal"] < m["seeds"]:
                signal += f"; {m['seeds_without_signal']} of {m['seeds']} seeds without"
        cells += [signal, f"{m['optimizer_steps']:.0f}", f"{m['trained_tokens']:.0f}",
                  f"{m['policy_calls']:.0f}", f"{m['generated_tokens']:.0f}",
                  f"{m['env_steps']:.0f}", f"{m['seconds']:.0f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_comparison(env: str, record: dict[str, Any], results: Path, names: dict[str, str]
                     ) -> Path:  # fmt: skip
    """``compare_<env>[_quick].{json,md}`` in ``results``, the benchmarks' record layout."""
    import datetime
    import os
    import platform

    from ipr_train.records import write_text

    name = f"compare_{env}{'_quick' if record['quick'] else ''}"
    sft = record["methods"]["sft"]
    first = next(k for k in sft if k.endswith("_reward"))
    ratios = {f"{m}_{first}_vs_sft": (v[first] / sft[first] if sft[first] else None)
              for m, v in record["methods"].items() if m != "sft"}  # fmt: skip
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    body = {"benchmark": name, "date": datetime.date.today().isoformat(), "machine": machine,
            "metrics": record, "ratios": ratios}  # fmt: skip
    write_text(results / f"{name}.json", json.dumps(body, indent=1))
    write_text(results / f"{name}.md", comparison_markdown(record, names))
    return results / f"{name}.json"
