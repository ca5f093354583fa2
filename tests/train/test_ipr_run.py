"""IPR end to end on the embedded WebShop with a tiny model (the quickstart, shortened):
every stage runs, the report has SFT and IPR rows, a kill -9 inside each stage loses nothing
and the resumed run's artifacts equal an uninterrupted run's, a changed config is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ipr_train.cli import main
from ipr_train.records import read_pairs, read_trajectories

STAGES = [
    "experts",
    "sft",
    "iter_0/eval",
    "iter_1/explore",
    "iter_1/step_rewards",
    "iter_1/pairs",
    "iter_1/reference",
    "iter_1/train",
    "iter_1/eval",
]
# the quickstart, shortened (CI): the README's main job end to end
RUN = [
    sys.executable,
    "-m",
    "ipr_train.cli",
    "quickstart",
    "--quick",
    "--hidden",
    "64",
    "--output-dir",
]


def _env(data):
    return dict(os.environ, IPR_GYM_DATA=str(data), IPR_PROGRESS="0", IPR_THREADS="1")


def artifacts(run: Path) -> dict[str, bytes]:
    """Every file a stage wrote, the report and its plot included, but for wall-clock fields
    (stats, metrics, timings) and the files that name the run's own folder (its config, the
    training identities)."""
    out = {}
    skip = ("stats.json", "metrics.jsonl", "timings.md", "config.yaml", "run_identity.json")
    for path in sorted(run.rglob("*")):
        name = path.relative_to(run).as_posix()
        if not path.is_file() or path.name in skip or "tensorboard" in name:
            continue
        out[name] = path.read_bytes()
    return out


@pytest.fixture(scope="module")
def straight(tmp_path_factory, installed_data):
    folder = tmp_path_factory.mktemp("straight")
    done = subprocess.run(
        [*RUN, str(folder)], env=_env(installed_data), capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("# IPR on ipr/WebShop-v0 (train)")  # the report, printed
    return folder


def test_every_stage_runs_and_the_report_has_sft_and_ipr_rows(straight):
    run = straight / "run"
    assert all((run / s / "stats.json").is_file() for s in STAGES)
    report = (run / "report.md").read_text()
    assert "| 0 | SFT | ipr/WebShop-v0 | test | 3 |" in report
    assert "| 1 | IPR iteration 1 | ipr/WebShop-v0 | test | 3 |" in report
    pairs = read_pairs(run / "iter_1" / "pairs" / "pairs.jsonl")
    stats = json.loads((run / "iter_1" / "pairs" / "stats.json").read_text())
    assert stats["step_pairs"] + stats["outcome_pairs"] == len(pairs) > 0
    assert f"| 1 | {stats['step_pairs']} | {stats['outcome_pairs']} |" in report
    assert (run / "report.png").read_bytes()[:4] == b"\x89PNG"
    for pair in pairs:  # chosen is the expert's own continuation of the prompt
        assert pair.chosen[0].role == "assistant" and pair.prompt[-1].role == "user"


def test_kill_9_inside_each_stage_resumes_to_the_same_artifacts(straight, tmp_path, installed_data):
    """Run the command again and again, each time killing it (SIGKILL) as soon as a stage
    that was not killed yet has begun, until a run ends by itself."""
    folder = tmp_path / "killed"
    run = folder / "run"
    attempted, interrupted = set(), []
    for _ in range(2 * len(STAGES)):
        proc = subprocess.Popen(
            [*RUN, str(folder)],
            env=_env(installed_data),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        victim = None
        while victim is None and proc.poll() is None:
            victim = next(
                (
                    s
                    for s in STAGES
                    if s not in attempted and (run / s).with_name(f".{Path(s).name}.tmp").exists()
                ),
                None,
            )
            time.sleep(0.002)
        if victim is None:
            assert proc.wait() == 0
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        attempted.add(victim)
        if not (run / victim / "stats.json").is_file():
            interrupted.append(victim)  # killed in the middle: nothing of it counts as done
    assert (run / STAGES[-1] / "stats.json").is_file()
    assert len(interrupted) >= len(STAGES) - 2, interrupted  # all but the briefest stages
    assert artifacts(run) == artifacts(straight / "run")


def test_another_process_on_a_busy_cpu_prints_the_same_report_byte_for_byte(
    straight, tmp_path, installed_data
):
    """The same config and seed in a second process, with a process spinning on a core
    beside it: the same report, plot, models and pairs. It runs with --fresh over a folder
    holding another run's config, which a run without it would refuse."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("iterations: 7\n")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        done = subprocess.run(
            [*RUN, str(tmp_path), "--fresh"], env=_env(installed_data),
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    finally:
        spinner.kill()
        spinner.wait()
    assert done.returncode == 0, done.stderr[-3000:]
    assert "earlier quickstart" not in done.stderr
    report = (tmp_path / "run" / "report.md").read_bytes()
    assert report == (straight / "run" / "report.md").read_bytes()
    assert done.stdout.startswith(report.decode())
    assert f"report: {tmp_path / 'run' / 'report.md'}" in done.stdout
    assert f"plot:   {tmp_path / 'run' / 'report.png'}" in done.stdout
    assert (tmp_path / "run" / "report.png").read_bytes() == (
        straight / "run" / "report.png"
    ).read_bytes()
    assert artifacts(tmp_path / "run") == artifacts(straight / "run")


def test_a_rerun_over_a_finished_run_says_it_reuses_it(straight, installed_data):
    again = subprocess.run([*RUN, str(straight)], env=_env(installed_data),
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "holds an earlier quickstart: its finished stages are reused" in again.stderr
    assert "--fresh" in again.stderr
    assert again.stdout.startswith((straight / "run" / "report.md").read_text())


def test_a_changed_config_is_refused(straight, capsys):
    config = yaml.safe_load((straight / "run" / "config.yaml").read_text())
    config["iterations"] = 2
    path = straight / "changed.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "was started with another config (keys ['iterations'] differ)" in err


def _run_config(config: dict, path: Path, data: Path) -> subprocess.CompletedProcess:
    """``ipr-train run`` on ``config`` (written to ``path``) in a process of its own."""
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [sys.executable, "-m", "ipr_train.cli", "run", str(path)],
        env=_env(data), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_eto_contrasts_the_agents_own_episodes_against_itself(
    straight, tmp_path, installed_data, continuation_logprob
):
    """ETO from the quickstart's SFT model: whole episodes from each expert's start, outcome
    pairs only where the agent scored below the expert, the agent itself as reference."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ipr_train.records import read_trajectories

    sft = straight / "run" / "sft" / "final"
    config = yaml.safe_load((straight / "run" / "config.yaml").read_text())
    dpo = {k: v for k, v in config["dpo"].items() if k != "sft_weight"}
    for key in ("monte_carlo", "tau", "pair_rule", "pair_kinds", "step_pairs_at_start",
                "step_reward_model"):  # IPR's own sections  # fmt: skip
        config.pop(key)
    config.update(method="eto", output_dir=str(tmp_path / "eto"), model=str(sft), sft=None,
                  iterations=1, explore_limit=4, dpo=dpo)  # fmt: skip
    done = _run_config(config, tmp_path / "eto.yaml", installed_data)
    run = tmp_path / "eto"
    assert done.stdout.startswith("# ETO on ipr/WebShop-v0 (train)")
    assert "| 1 | ETO iteration 1 | ipr/WebShop-v0 | test | 3 |" in done.stdout
    assert not (run / "iter_1" / "step_rewards").exists()  # no Monte Carlo
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["dpo"]["sft_weight"] == 0.0  # ETO's loss is DPO alone
    experts = read_trajectories(Path(config["experts"]))[:4]
    branches = read_trajectories(run / "iter_1" / "explore" / "branches.jsonl")
    assert [b.meta["step"] for b in branches] == [0, 0, 0, 0]
    worse = [b for b, e in zip(branches, experts, strict=True) if b.reward < e.reward]
    pairs = read_pairs(run / "iter_1" / "pairs" / "pairs.jsonl")
    assert len(pairs) == len(worse) > 0 and {p.kind for p in pairs} == {"outcome"}
    # the reference is the agent that began the iteration (here the SFT model)
    tokenizer = AutoTokenizer.from_pretrained(sft)
    model = AutoModelForCausalLM.from_pretrained(sft)
    reference = json.loads((run / "iter_1" / "reference" / "reference.json").read_text())
    for pair, ref in zip(pairs, reference, strict=True):
        assert pair.rejected_reward < pair.chosen_reward
        chosen, _ = continuation_logprob(model, tokenizer, pair.prompt, pair.chosen)
        rejected, _ = continuation_logprob(model, tokenizer, pair.prompt, pair.rejected)
        assert ref["chosen"] == pytest.approx(chosen, rel=1e-4)
        assert ref["rejected"] == pytest.approx(rejected, rel=1e-4)


def test_iterations_before_the_last_can_be_evaluated_on_fewer_tasks(
    straight, tmp_path, installed_data
):
    """``intermediate_eval_limit``: iteration 1 of 2 on the first task only, the SFT model
    and the last iteration on every task of the split (3 in the shortened quickstart)."""
    config = yaml.safe_load((straight / "run" / "config.yaml").read_text())
    for key in ("monte_carlo", "tau", "pair_rule", "pair_kinds", "step_pairs_at_start",
                "step_reward_model"):  # IPR's own sections  # fmt: skip
        config.pop(key)
    config.update(method="eto", output_dir=str(tmp_path / "eto"), sft=None, iterations=2,
                  model=str(straight / "run" / "sft" / "final"), explore_limit=2,
                  intermediate_eval_limit=1)  # fmt: skip
    done = _run_config(config, tmp_path / "eto.yaml", installed_data)
    assert "| 0 | SFT | ipr/WebShop-v0 | test | 3 |" in done.stdout
    assert "| 1 | ETO iteration 1 | ipr/WebShop-v0 | test | 1 |" in done.stdout
    assert "| 2 | ETO iteration 2 | ipr/WebShop-v0 | test | 3 |" in done.stdout
    first = read_trajectories(tmp_path / "eto" / "iter_1" / "eval" / "WebShop-v0_test.jsonl")
    last = read_trajectories(tmp_path / "eto" / "iter_2" / "eval" / "WebShop-v0_test.jsonl")
    assert [e.task for e in first] == [last[0].task] and len(last) == 3


def test_an_unknown_method_is_refused(straight, tmp_path, capsys):
    config = yaml.safe_load((straight / "run" / "config.yaml").read_text())
    config["method"] = "reinforce"
    path = tmp_path / "unknown.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    known = "known: ['eto', 'gigpo', 'grpo', 'ipr', 'ppo', 'rft', 'sft_continued', 'step_ppo', "
    assert f"unknown method 'reinforce'; {known}" in err


def test_rft_retrains_the_base_model_on_experts_and_new_successes(
    straight, tmp_path, installed_data
):
    """RFT from the quickstart's base model: the agent's episodes that reach the threshold
    and are not already in the set join the experts, and SFT of the base model reruns."""
    from ipr_train.records import read_trajectories

    config = yaml.safe_load((straight / "run" / "config.yaml").read_text())
    for key in ("monte_carlo", "tau", "pair_rule", "pair_kinds", "step_pairs_at_start",
                "step_reward_model", "outcome_margin", "dpo"):  # IPR's own sections  # fmt: skip
        config.pop(key)
    config.update(method="rft", output_dir=str(tmp_path / "rft"), iterations=1,
                  explore_limit=4, success_reward=0.0, samples=2,
                  explore={**config["explore"], "temperature": 1.0})  # fmt: skip
    path = tmp_path / "rft.yaml"
    done = _run_config(config, path, installed_data)
    run = tmp_path / "rft"
    assert "| 1 | RFT iteration 1 | ipr/WebShop-v0 | test | 3 |" in done.stdout
    experts = read_trajectories(run / "experts" / "experts.jsonl")
    branches = read_trajectories(run / "iter_1" / "explore" / "branches.jsonl")
    assert sorted(b.task for b in branches) == sorted(2 * [e.task for e in experts[:4]])
    known = {(e.task, tuple(s.action for s in e.steps)) for e in experts}
    new = {(b.task, tuple(s.action for s in b.steps)) for b in branches if b.steps} - known
    data = read_trajectories(run / "iter_1" / "augment" / "data.jsonl")
    assert data[: len(experts)] == experts and len(data) == len(experts) + len(new) > len(experts)
    stats = json.loads((run / "iter_1" / "augment" / "stats.json").read_text())
    assert stats["accepted"] == stats["added"] == len(new) and stats["threshold"] == 0.0
    summary = json.loads((run / "iter_1" / "train" / "sft_summary.json").read_text())
    assert summary["examples"] == len(data)
    identity = json.loads((run / "iter_1" / "train" / "run_identity.json").read_text())
    assert identity["model"] == str(Path(config["model"]).resolve())  # the base, again
    config.update(sft=None, output_dir=str(tmp_path / "rft2"))
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path)]) == 2  # RFT without SFT settings is refused
    config.update(sft={}, explore={**config["explore"], "temperature": 0.0})
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path)]) == 2  # greedy samples would repeat one episode
