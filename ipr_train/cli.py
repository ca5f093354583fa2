"""``ipr-train``: the training pipeline's command line.

``ipr-train quickstart`` is the main job on embedded defaults: SFT and one IPR iteration
of a tiny model on the embedded WebShop catalog (``ipr_train.quickstart``), ending with the
report. ``ipr-train run CONFIG`` runs IPR (or another method: ``method: rft``, ``eto``,
``ppo``, ``step_ppo``, ``stepagent_implicit``, ``stepagent_inverse``, ``grpo``, ``gigpo``)
from a YAML config; ``ipr-train compare ENV`` runs every method from one SFT model over
seeds and writes the comparison table (``ipr_train.compare``).
``ipr-train experts ENV_ID`` writes an env's expert trajectories; ``ipr-train sft CONFIG``
fine-tunes on trajectories (assistant tokens only); ``ipr-train eval CONFIG`` plays splits
with a policy and prints the papers' table. A config problem is one line per bad key on
stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ipr_gym.cli import plain, run_quietly
from ipr_train.config import ConfigError


def _sft(path: str) -> None:
    from accelerate import PartialState

    from ipr_train.config import SFTConfig, load_config
    from ipr_train.sft import run_sft

    cfg = load_config(path, SFTConfig)
    result = run_sft(cfg)
    losses = result.loss_history
    if PartialState().is_main_process:
        print(f"{result.steps} steps, loss {losses[0]:.4f} -> {losses[-1]:.4f}; "
              f"model in {Path(cfg.output_dir) / 'final'}")  # fmt: skip


def _quickstart(args: argparse.Namespace) -> None:
    import shutil

    from ipr_train.quickstart import quickstart

    out = Path(args.output_dir)
    run = out / "run"
    if args.fresh:
        shutil.rmtree(out, ignore_errors=True)
    elif run.is_dir():
        print(f"{out} holds an earlier quickstart: its finished stages are reused, so a finished "
              f"run only prints its report again (--fresh, or deleting {out}, starts afresh)",
              file=sys.stderr, flush=True)  # fmt: skip
    quickstart(out, quick=args.quick, hidden=args.hidden, layers=args.layers)
    print((run / "report.md").read_text())
    print((run / "timings.md").read_text())
    print(f"report: {run / 'report.md'}\nplot:   {run / 'report.png'}\n"
          f"wall time per stage: {run / 'timings.md'}")  # fmt: skip


def check_envs(envs: Sequence[Any], data_dir: str | None, where: str, key: str = "envs") -> None:
    """Build every env of a config once, before any model loads: a bad split or option is
    reported up front, naming the entry."""
    import ipr_gym
    from ipr_train.evaluate import env_setup

    problems = []
    for i, env in enumerate(envs):
        kwargs, _ = env_setup(env, data_dir)
        try:
            ipr_gym.make(env.id, **kwargs).close()
        except Exception as exc:
            problems.append(f"{where}: {key}.{i} ({env.id}, split {env.split!r}): {exc}")
    if problems:
        raise ConfigError("\n".join(problems))


def _eval(path: str) -> None:
    from ipr_train.config import EvalConfig, load_config
    from ipr_train.evaluate import evaluate, results_table
    from ipr_train.policies import GenerationParams, make_policy

    cfg = load_config(path, EvalConfig)
    check_envs(cfg.envs, cfg.data_dir, path)
    params = GenerationParams(
        temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
        seed=cfg.seed,
    )  # fmt: skip
    with make_policy(cfg.policy.model_dump()) as policy:
        results = evaluate(policy, cfg.envs, params, cfg.output_dir, workers=cfg.workers,
                           slots=cfg.slots, data_dir=cfg.data_dir)  # fmt: skip
    print(results_table(results))


def _run(path: str) -> None:
    import yaml

    from ipr_train.config import load_config
    from ipr_train.methods import method_of

    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        raw = None  # load_config names the problem
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config is a mapping of keys")
    cls, run = method_of(raw)
    cfg: Any = load_config(path, cls)
    check_envs([cfg.env], cfg.data_dir, path, "env")
    check_envs(cfg.eval, cfg.data_dir, path, "eval")
    run(cfg)
    print((Path(cfg.output_dir) / "report.md").read_text())


def _reward_model(args: argparse.Namespace) -> None:
    from ipr_train.reward_model import train_reward_model
    from ipr_train.train import Schedule

    schedule = Schedule(epochs=args.epochs, learning_rate=args.learning_rate,
                        batch_size=args.batch_size)  # fmt: skip
    try:
        report = train_reward_model(args.runs, args.init, args.output, schedule=schedule,
                                    heldout=args.heldout, tau=args.tau)  # fmt: skip
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    print(json.dumps(report, indent=1))


def _compare(args: argparse.Namespace) -> None:
    from ipr_train.compare import METHODS, NAMES, compare
    from ipr_train.compare_table import comparison_markdown

    out = args.output_dir or f"runs/compare_{args.env}{'_quick' if args.quick else ''}"
    try:
        record = compare(args.env, out, quick=args.quick, methods=args.methods or METHODS,
                         seeds=args.seeds, results_dir=args.results_dir,
                         data_dir=args.data_dir, sft_from=args.sft_from)  # fmt: skip
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    print(comparison_markdown(record, NAMES))


def _experts(args: argparse.Namespace) -> None:
    from ipr_train.experts import build_experts, write_experts

    kept, report = build_experts(
        args.env_id, args.split, data_dir=args.data_dir, limit=args.limit,
        workers=args.workers, min_reward=args.min_reward, source=args.source,
    )  # fmt: skip
    side = write_experts(args.output, kept, report)
    print(report.summary())
    print(f"written: {args.output} (report: {side})")


def main(argv: Sequence[str] | None = None) -> int:
    return run_quietly(_main, argv)


def _main(argv: Sequence[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="ipr-train",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    quick = commands.add_parser("quickstart", help="the main job on embedded defaults")
    quick.add_argument("--output-dir", default="runs/quickstart", help="where the run goes")
    quick.add_argument("--quick", action="store_true", help="every stage shrunk (CI)")
    quick.add_argument("--hidden", type=int, default=128, help="the tiny model's width")
    quick.add_argument("--layers", type=int, default=2, help="the tiny model's layers")
    quick.add_argument("--fresh", action="store_true",
                       help="delete an earlier run in --output-dir and start again")  # fmt: skip
    sft = commands.add_parser("sft", help="supervised fine-tuning from a YAML config")
    sft.add_argument("config")
    evaluation = commands.add_parser("eval", help="evaluate a policy from a YAML config")
    evaluation.add_argument("config")
    run = commands.add_parser("run", help="run a method from a YAML config; resumes")
    run.add_argument("config")
    reward = commands.add_parser("reward-model",
                                 help="fit a step reward model to IPR runs' Monte Carlo "
                                 "estimates")  # fmt: skip
    reward.add_argument("runs", nargs="+", help="IPR run directories")
    reward.add_argument("--init", required=True, help="model folder its backbone starts from")
    reward.add_argument("-o", "--output", required=True, help="where the model goes")
    reward.add_argument("--heldout", type=float, default=0.25, help="share of tasks held out")
    reward.add_argument("--tau", type=float, default=0.01, help="the step-pair margin")
    reward.add_argument("--epochs", type=float, default=3.0)
    reward.add_argument("--learning-rate", type=float, default=1e-4)
    reward.add_argument("--batch-size", type=int, default=4)
    comparison = commands.add_parser("compare", help="every method on one env, over seeds")
    comparison.add_argument("env", choices=["webshop", "alfworld", "intercode"])
    comparison.add_argument("--quick", action="store_true", help="a shrunk budget (CI)")
    comparison.add_argument("--output-dir", help="default: runs/compare_<env>[_quick]")
    comparison.add_argument("--methods", nargs="+", help="a subset (default: all)")
    comparison.add_argument("--seeds", nargs="+", type=int, help="default: the budget's")
    comparison.add_argument("--results-dir", default="benchmarks/results",
                            help="where compare_<env>.{json,md} go")  # fmt: skip
    comparison.add_argument("--sft-from", help="reuse this run's SFT (same settings), e.g. "
                            "runs/quickstart/run for webshop")  # fmt: skip
    comparison.add_argument("--data-dir", help="data directory (default: $IPR_GYM_DATA)")
    experts = commands.add_parser("experts", help="write an env's verified expert trajectories")
    experts.add_argument("env_id", help="ipr/WebShop-v0, ipr/ALFWorld-v0 or ipr/InterCodeSQL-v0")
    experts.add_argument("--split", default="train")
    experts.add_argument("-o", "--output", required=True, help="JSONL file to write")
    experts.add_argument("--limit", type=int, help="only the first N experts")
    experts.add_argument("--workers", type=int, default=0, help="env worker processes")
    experts.add_argument("--source", help="another demonstrator (WebShop: first_result)")
    experts.add_argument("--min-reward", type=float, default=1.0,
                         help="keep replays that score at least this (default 1.0)")  # fmt: skip
    experts.add_argument("--data-dir", help="data directory (default: $IPR_GYM_DATA or cache)")
    args = parser.parse_args(argv)
    if not sys.stderr.isatty():  # a log: no per-load bars from transformers, ours stay
        from ipr_train.progress import quiet_transformers

        quiet_transformers()
    try:
        if args.command == "quickstart":
            _quickstart(args)
        elif args.command == "sft":
            _sft(args.config)
        elif args.command == "eval":
            _eval(args.config)
        elif args.command == "experts":
            _experts(args)
        elif args.command == "run":
            _run(args.config)
        elif args.command == "compare":
            _compare(args)
        elif args.command == "reward-model":
            _reward_model(args)
    except ConfigError as exc:
        print(f"ipr-train {args.command}: config error\n{exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
