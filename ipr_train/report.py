"""A run's report: a Markdown table per iteration and a plot of reward per iteration.

``report.md`` holds, per iteration, the test average reward and success per env and split
(ALFWorld as seen/unseen), the pairs built by kind, the Monte Carlo estimates computed and
reused, the policy calls, generated tokens and env steps, the optimizer steps and trained
tokens, and the training signal the iteration got (``signal_text``; "no signal" where it
got none, so a row that trained on nothing says so): only what the config and seed
decide, so the same run gives the same file byte for byte on any machine of a kind.
``timings.md`` holds the wall time per stage, which the machine and its load decide.
``report.png`` draws average reward against iteration, one line per env and split, on the
reward's whole scale (0 to 1) with each point's value written beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ipr_train.evaluate import PAPER_SPLIT_NAMES
from ipr_train.records import write_text


def _name(env_id: str, split: str) -> str:
    return f"{env_id.split('/')[-1]} {PAPER_SPLIT_NAMES.get(split, split)}"


def report_markdown(rows: Sequence[dict[str, Any]], title: str) -> str:
    lines = [
        f"# {title}",
        "",
        "## Evaluation",
        "",
        "| iteration | model | env | split | episodes | avg reward | success |",
        "|---:|---|---|---|---:|---:|---:|",
    ]
    for row in rows:
        for r in row["eval"]:
            split = PAPER_SPLIT_NAMES.get(r["split"], r["split"])
            lines.append(
                f"| {row['iteration']} | {row['model']} | {r['env_id']} | {split} | "
                f"{r['episodes']} | {r['avg_reward']:.3f} | {r['success_rate']:.1%} |"
            )
    lines += [
        "",
        "## Cost",
        "",
        "| iteration | step pairs | outcome pairs | estimates computed | reused | "
        "policy calls | generated tokens | env steps | optimizer steps | trained tokens | "
        "training signal |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        c = row.get("cost", {})
        lines.append(
            f"| {row['iteration']} | {c.get('step_pairs', 0)} | "
            f"{c.get('outcome_pairs', 0)} | {c.get('computed', 0)} | "
            f"{c.get('reused', 0)} | {c.get('policy_calls', 0)} | "
            f"{c.get('generated_tokens', 0)} | {c.get('env_steps', 0)} | "
            f"{c.get('optimizer_steps', 0)} | {c.get('trained_tokens', 0)} | "
            f"{signal_text(c) if row['iteration'] else '-'} |"
        )
    lines += ["", "Wall time per stage: `timings.md` (it depends on the machine, this file not)."]
    return "\n".join(lines) + "\n"


def signal_text(cost: dict[str, Any]) -> str:
    """What an iteration (or a run: summed costs) had to learn from, in its method's unit:
    pairs (by kind, and how many chose the agent's side), accepted episodes (RFT), non-zero
    step advantages (the policy-gradient methods) and the discriminator's accuracy; "no
    signal" where there was none."""
    parts = []
    unit = cost.get("signal_unit", "pairs")
    if unit == "advantages":
        parts.append(f"{cost['nonzero_steps']}/{cost['advantage_steps']} non-zero advantages")
    elif unit == "episodes":
        parts.append(f"{cost['accepted']} accepted episodes")
    elif unit == "demonstrations":
        parts.append(f"{cost['signal']} demonstrations")
    else:
        parts.append(f"{cost.get('step_pairs', 0)} step + {cost.get('outcome_pairs', 0)} "
                     f"outcome pairs ({cost.get('agent_chosen', 0)} agent-chosen)")  # fmt: skip
    if "discriminator_accuracy" in cost:
        parts.append(f"discriminator accuracy {cost['discriminator_accuracy']:.2f}")
    text = ", ".join(parts)
    return text if cost.get("signal", 0) else f"no signal ({text})"


def timings_markdown(rows: Sequence[dict[str, Any]], title: str) -> str:
    lines = [f"# {title}: wall time per stage", "", "| iteration | model | seconds per stage |",
             "|---:|---|---|"]  # fmt: skip
    for row in rows:
        stages = ", ".join(f"{k} {v:.0f}" for k, v in row.get("seconds", {}).items())
        lines.append(f"| {row['iteration']} | {row['model']} | {stages} |")
    return "\n".join(lines) + "\n"


def plot_rewards(rows: Sequence[dict[str, Any]], path: str | Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines: dict[str, tuple[list[int], list[float]]] = {}
    for row in rows:
        for r in row["eval"]:
            xs, ys = lines.setdefault(_name(r["env_id"], r["split"]), ([], []))
            xs.append(row["iteration"])
            ys.append(r["avg_reward"])
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (xs, ys) in sorted(lines.items()):
        ax.plot(xs, ys, marker="o", label=name)
        for x, y in zip(xs, ys, strict=True):
            ax.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(0, 7),
                        ha="center", fontsize=8)  # fmt: skip
    ax.set_xlabel("iteration (0 = SFT)")
    ax.set_ylabel("average reward")
    ax.set_ylim(0, 1.05)  # the reward's scale: a 0.003 change stays a small one
    ax.set_title(title)
    ax.set_xticks(sorted({row["iteration"] for row in rows}))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})  # no version in the bytes
    plt.close(fig)


def write_report(root: str | Path, rows: Sequence[dict[str, Any]], title: str) -> Path:
    root = Path(root)
    write_text(root / "report.md", report_markdown(rows, title))
    write_text(root / "timings.md", timings_markdown(rows, title))
    plot_rewards(rows, root / "report.png", title)
    return root / "report.md"
