"""Every method end to end: ``ipr-train compare webshop --quick`` (the CI variant of the
comparison) trains one tiny SFT model on the embedded WebShop and runs every method from
it for one iteration; each method's artifacts are then checked against computations
written here (advantages from the stored episodes with the statistics module, pairs from
the stored branches, the discriminator's and the reward model's numbers from transformers'
plain forward pass)."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ipr_train.compare import METHODS, NAMES
from ipr_train.records import read_pairs, read_trajectories


@pytest.fixture(scope="module")
def compared(tmp_path_factory, installed_data):
    out = tmp_path_factory.mktemp("compare")
    env = dict(os.environ, IPR_GYM_DATA=str(installed_data), IPR_PROGRESS="0")
    done = subprocess.run(
        [sys.executable, "-m", "ipr_train.cli", "compare", "webshop", "--quick",
         "--output-dir", str(out / "runs"), "--results-dir", str(out / "results")],
        env=env, capture_output=True, text=True, timeout=2400,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _run(compared: Path, method: str) -> Path:
    return compared / "runs" / method / "seed0"


def _usable(run: Path) -> list:
    episodes = read_trajectories(run / "iter_1" / "explore" / "branches.jsonl")
    saved = json.loads((run / "iter_1" / "advantages" / "advantages.json").read_text())
    usable = [i for i, e in enumerate(episodes) if e.steps and "error" not in e.meta]
    assert [s["episode"] for s in saved] == usable
    for s in saved:
        episodes[s["episode"]].meta["position"] = s["episode"]
    return [(episodes[s["episode"]], s["advantages"]) for s in saved]


def _z(values: list[float]) -> list[float]:
    if len(values) < 2:
        return [0.0] * len(values)
    m, s = statistics.mean(values), statistics.stdev(values)
    return [(v - m) / (s + 1e-6) for v in values]


def test_the_table_names_every_method_with_reward_success_and_cost(compared):
    record = json.loads((compared / "results" / "compare_webshop_quick.json").read_text())
    assert set(record["metrics"]["methods"]) == {"sft", *METHODS}
    table = (compared / "results" / "compare_webshop_quick.md").read_text()
    for method in ("sft", *METHODS):
        assert f"| {NAMES[method]} | " in table
    assert (
        "| method | test avg reward [95% CI] | test success | test p vs SFT | test p vs SFT "
        "continued | training signal (all seeds) | optimizer steps | trained tokens | "
        "policy calls | generated tokens | env steps | train seconds |"
    ) in table
    for method in METHODS:
        report = (_run(compared, method) / "report.md").read_text()
        assert "iteration 1 | ipr/WebShop-v0 | test | 3 |" in report


def test_every_method_that_trains_takes_the_same_optimizer_steps(compared):
    """The budget rule: 2 optimizer steps per iteration (the quick budget's), for every
    method that got something to train on, whatever the size of its data; the stats, the
    table's column and the training loop's own summary agree."""
    from ipr_train.compare import ENVS

    steps = ENVS["webshop"].quick.train_steps
    record = json.loads((compared / "results" / "compare_webshop_quick.json").read_text())
    for method in METHODS:
        train = _run(compared, method) / "iter_1" / "train"
        row = record["metrics"]["methods"][method]
        if not train.is_dir():  # nothing to train on: no pairs formed
            assert row["signal"] == 0 and row["optimizer_steps"] == 0, method
            continue
        stats = json.loads((train / "stats.json").read_text())
        assert stats["optimizer_steps"] == steps == row["optimizer_steps"], method
        assert stats["trained_tokens"] > 0 and row["trained_tokens"] == stats["trained_tokens"]
        config = yaml.safe_load((_run(compared, method) / "config.yaml").read_text())
        section = next(config[k] for k in ("dpo", "update", "sft") if config.get(k))
        assert section["max_steps"] == steps and section["learning_rate"] == 1e-4, method
        assert section["lr_scheduler"] == "constant_with_warmup", method


def test_the_control_continues_sft_on_the_demonstrations_alone(compared):
    run = _run(compared, "sft_continued")
    sft = compared / "runs" / "sft"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["sft_model"] == str(sft / "sft" / "final")
    summary = json.loads((run / "iter_1" / "train" / "sft_summary.json").read_text())
    experts = read_trajectories(sft / "experts" / "experts.jsonl")
    assert summary["examples"] == len(experts) and summary["steps"] == 2
    assert not (run / "iter_1" / "explore").exists()  # it plays nothing


def test_no_signal_rows_say_so(compared):
    record = json.loads((compared / "results" / "compare_webshop_quick.json").read_text())
    table = (compared / "results" / "compare_webshop_quick.md").read_text().splitlines()
    for method in METHODS:
        row = next(line for line in table if line.startswith(f"| {NAMES[method]} |"))
        silent = record["metrics"]["methods"][method]["signal"] == 0
        assert row.split(" | ")[1].startswith("no signal") == silent, method


def test_every_method_starts_from_the_one_sft_model(compared):
    sft = str(compared / "runs" / "sft" / "sft" / "final")
    for method in METHODS:
        config = yaml.safe_load((_run(compared, method) / "config.yaml").read_text())
        start = config["sft_model"] if method in ("rft", "sft_continued") else config["model"]
        assert start == sft and config["iterations"] == 1 and config["explore_limit"] == 4


def test_ppo_subtracts_the_task_groups_mean_outcome_then_whitens(compared):
    samples = _usable(_run(compared, "ppo"))
    centred = []
    for episode, _ in samples:
        group = [e.reward for e, _ in samples if e.meta["expert"] == episode.meta["expert"]]
        centred.append(episode.reward - statistics.mean(group))
    for (episode, got), value in zip(samples, _z(centred), strict=True):
        assert got == pytest.approx([value] * len(episode.steps), abs=1e-9)


def test_step_ppo_subtracts_the_value_of_the_state_it_acted_in(compared):
    run = _run(compared, "step_ppo")
    samples = _usable(run)
    means = {
        (m["expert"], m["step"]): m["mean"]
        for m in json.loads((run / "iter_1/step_rewards/step_rewards.json").read_text())
    }
    q = {(e.meta["position"], t): means[(e.meta["position"], t)]
         for e, _ in samples for t in range(len(e.steps))}  # fmt: skip
    for episode, _ in samples:  # where the step ended the episode, its own outcome
        last = len(episode.steps) - 1
        if episode.steps[last].terminated:
            assert q[(episode.meta["position"], last)] == episode.reward
    relative = []
    for episode, _ in samples:
        i = episode.meta["position"]
        starts = [q[(e.meta["position"], 0)] for e, _ in samples
                  if e.meta["expert"] == episode.meta["expert"]]  # fmt: skip
        for t in range(len(episode.steps)):
            value = statistics.mean(starts) if t == 0 else q[(i, t - 1)]
            relative.append(q[(i, t)] - value)
    flat = [a for _, adv in samples for a in adv]
    assert flat == pytest.approx(_z(relative), abs=1e-9)
    assert any(abs(a) > 1e-9 for a in flat)


def test_grpo_normalises_within_the_task_group(compared):
    samples = _usable(_run(compared, "grpo"))
    for x in (0, 1):  # the two tasks, two episodes each (fewer where one failed to generate)
        assert 1 <= len([1 for e, _ in samples if e.meta["expert"] == x]) <= 2
    for episode, got in samples:
        group = [e.reward for e, _ in samples if e.meta["expert"] == episode.meta["expert"]]
        if len(group) == 1:
            value = episode.reward / (1 + 1e-6)
        else:
            value = (episode.reward - statistics.mean(group)) / (statistics.stdev(group) + 1e-6)
        assert got == pytest.approx([value] * len(episode.steps), abs=1e-9)


def test_gigpo_adds_the_anchor_state_advantage(compared):
    samples = _usable(_run(compared, "gigpo"))
    episodes = [e for e, _ in samples]
    gamma = 0.95
    rows = []  # (episode, step, group, the env's observation before the step, return)
    for i, e in enumerate(episodes):
        for t in range(len(e.steps)):
            ret = sum(gamma ** (u - t) * e.steps[u].reward for u in range(t, len(e.steps)))
            seen = [s.observation for s in e.steps[:t] if s.action is not None]
            rows.append((i, t, e.meta["expert"], seen[-1] if seen else "<start>", ret))
    for (i, _, g, anchor, ret), got in zip(rows, [a for _, adv in samples for a in adv],
                                           strict=True):  # fmt: skip
        # the episode statistics over the group's steps (verl-agent's default)
        group = [episodes[j].reward for (j, _, g2, _, _) in rows if g2 == g]
        if len(group) == 1:
            episode = episodes[i].reward / (1 + 1e-6)
        else:
            m, s = statistics.mean(group), statistics.stdev(group)
            episode = (episodes[i].reward - m) / (s + 1e-6)
        same = [r for (_, _, g2, a2, r) in rows if g2 == g and a2 == anchor]
        step = (
            0.0
            if len(same) == 1
            else (ret - statistics.mean(same)) / (statistics.stdev(same) + 1e-6)
        )
        assert got == pytest.approx(episode + step, abs=1e-6)


def test_stepagent_implicit_contrasts_the_expert_action_with_the_agents(
    compared, continuation_logprob
):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = _run(compared, "stepagent_implicit")
    experts = read_trajectories(run / "experts" / "experts.jsonl")[:4]
    branches = read_trajectories(run / "iter_1" / "explore" / "branches.jsonl")
    total = sum(len(e.steps) for e in experts)
    assert len(branches) == 2 * total  # practice 2 at every prefix
    assert all(len(b.steps) <= 1 for b in branches)  # one action each
    differ = [b for b in branches
              if b.steps and b.steps[0].action != experts[b.meta["expert"]].steps[
                  b.meta["step"]].action]  # fmt: skip
    pairs = read_pairs(run / "iter_1" / "pairs" / "pairs.jsonl")
    assert len(pairs) == len(differ) > 0
    for pair, branch in zip(pairs, differ, strict=True):
        expert = experts[branch.meta["expert"]]
        turn = expert.steps[branch.meta["step"]].turn
        assert pair.prompt == expert.turns[:turn]
        assert pair.chosen == (expert.turns[turn],) and pair.rejected == (branch.turns[turn],)
    sft = compared / "runs" / "sft" / "sft" / "final"
    tokenizer, model = AutoTokenizer.from_pretrained(sft), AutoModelForCausalLM.from_pretrained(sft)
    reference = json.loads((run / "iter_1" / "reference" / "reference.json").read_text())
    for pair, ref in zip(pairs[:3], reference, strict=False):
        chosen, _ = continuation_logprob(model, tokenizer, pair.prompt, pair.chosen)
        assert ref["chosen"] == pytest.approx(chosen, rel=1e-4)


def test_stepagent_inverse_rewards_log_d(compared):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    run = _run(compared, "stepagent_inverse")
    samples = _usable(run)
    folder = run / "iter_1" / "discriminator" / "final"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    rewards = []
    for episode, _ in samples:
        turns = episode.turns[: episode.steps[0].turn + 1]
        text = tokenizer.apply_chat_template([{"role": t.role, "content": t.content}
                                              for t in turns], tokenize=False)  # fmt: skip
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logit = float(model(input_ids=ids).logits[0, 0])
        rewards.append(math.log(1 / (1 + math.exp(-logit))))
    assert [a for _, adv in samples for a in adv] == pytest.approx(_z(rewards), abs=1e-4)
    stats = json.loads((run / "iter_1" / "discriminator" / "stats.json").read_text())
    assert stats["examples"] == 2 * len([1 for e, _ in samples])


def test_policy_updates_train_the_agent_it_played(compared):
    import torch
    from transformers import AutoModelForCausalLM

    sft = compared / "runs" / "sft" / "sft" / "final"
    before = AutoModelForCausalLM.from_pretrained(sft).state_dict()
    signal = []
    for method in ("ppo", "grpo", "gigpo", "step_ppo", "stepagent_inverse"):
        train = _run(compared, method) / "iter_1" / "train"
        identity = json.loads((train / "run_identity.json").read_text())
        assert identity["model"] == str(sft) and identity["loss"] == method
        samples = _usable(_run(compared, method))
        after = AutoModelForCausalLM.from_pretrained(train / "final").state_dict()
        moved = any(not torch.equal(before[k], after[k]) for k in before)
        # the KL term is 0 with its gradient at the start (the agent is the reference): the
        # model moves exactly where some advantage is not 0
        nonzero = any(abs(a) > 1e-9 for _, adv in samples for a in adv)
        assert moved == nonzero, method
        signal.append(nonzero)
    assert any(signal)


def test_ablations_drop_a_pair_kind_or_the_sft_term(compared):
    """IPR's ablations as its release runs them: w/o o-DPO trains on IPR's step pairs only,
    w/o s-DPO on its outcome pairs only (the same pairs, byte for byte, from the same
    exploration and estimates), w/o SFT on all of them without the SFT term; IPR here formed
    both kinds, so each ablation's training set or loss differs from IPR's."""
    ipr = _run(compared, "ipr")
    pairs = read_pairs(ipr / "iter_1" / "pairs" / "pairs.jsonl")
    kinds = {p.kind for p in pairs}
    assert kinds == {"step", "outcome"}  # the quick budget gives IPR both kinds to drop
    assert all(p.step > 0 for p in pairs if p.kind == "step")  # no step pairs at t = 0
    ipr_train = json.loads((ipr / "iter_1" / "train" / "stats.json").read_text())
    assert ipr_train["examples"] == len(pairs)
    for method, kept, weights in (
        ("ipr_no_odpo", {"step"}, {"outcome_weight": 1.0, "step_weight": 1.0, "sft_weight": 1.0}),
        ("ipr_no_sdpo", {"outcome"}, {"outcome_weight": 1.0, "step_weight": 1.0,
                                      "sft_weight": 1.0}),
        ("ipr_no_sft", {"step", "outcome"}, {"outcome_weight": 1.0, "step_weight": 1.0,
                                            "sft_weight": 0.0}),
    ):  # fmt: skip
        run = _run(compared, method)
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert sorted(config["pair_kinds"]) == sorted(kept)
        assert {k: config["dpo"][k] for k in weights} == weights
        theirs = read_pairs(run / "iter_1" / "pairs" / "pairs.jsonl")
        assert theirs == [p for p in pairs if p.kind in kept]
        stats = json.loads((run / "iter_1" / "train" / "stats.json").read_text())
        assert stats["examples"] == len(theirs)
        identity = json.loads((run / "iter_1" / "train" / "run_identity.json").read_text())
        assert identity["loss"] == "ipr"
    # w/o SFT trains IPR's own pairs in IPR's order: its first window is IPR's, and its loss
    # there is IPR's minus the (positive) SFT term
    no_sft = json.loads((_run(compared, "ipr_no_sft") / "iter_1" / "train" / "stats.json")
                        .read_text())  # fmt: skip
    assert no_sft["loss_history"][0] < ipr_train["loss_history"][0]


def test_rft_samples_k_episodes_and_reports_what_it_accepted(compared):
    run = _run(compared, "rft")
    identity = json.loads((run / "iter_1" / "train" / "run_identity.json").read_text())
    assert identity["model"] == str(compared / "runs" / "sft" / "sft" / "final")
    episodes = read_trajectories(run / "iter_1" / "explore" / "branches.jsonl")
    tasks = [e.task for e in episodes]
    assert len(episodes) == 2 * 4 and all(tasks.count(t) == 2 for t in tasks)  # k = 2 each
    stats = json.loads((run / "iter_1" / "augment" / "stats.json").read_text())
    accepted = sum(1 for e in episodes if e.reward >= 1.0 and e.steps)
    assert stats["threshold"] == 1.0 and stats["accepted"] <= accepted
    record = json.loads((compared / "results" / "compare_webshop_quick.json").read_text())
    assert record["metrics"]["methods"]["rft"]["accepted"] == stats["accepted"]


def test_a_step_reward_model_learns_iprs_estimates_and_replaces_monte_carlo(
    compared, tmp_path, installed_data
):
    """Fit on IPR's stored estimates (half of the tasks held out), then run IPR with it: the
    step rewards are the model's numbers, no continuation is sampled."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ipr_train.cli import main

    ipr = _run(compared, "ipr")
    sft = compared / "runs" / "sft" / "sft" / "final"
    model = tmp_path / "rm"
    assert main(["reward-model", str(ipr), "--init", str(sft), "-o", str(model),
                 "--heldout", "0.5", "--epochs", "2"]) == 0  # fmt: skip
    report = json.loads((model / "agreement.json").read_text())
    scored = (ipr / "iter_1" / "step_rewards" / "scored.jsonl").read_text().splitlines()
    held = report["heldout"]
    assert report["train_states"] + held["states"] == len(scored)
    states = [json.loads(line) for line in scored]
    gone = set(report["heldout_experts"])
    assert len(gone) == round(0.5 * len({s["expert"] for s in states})) >= 1
    held_states = [s for s in states if s["expert"] in gone]
    train_states = [s for s in states if s["expert"] not in gone]
    assert (held["states"], report["train_states"]) == (len(held_states), len(train_states))
    tokenizer = AutoTokenizer.from_pretrained(model / "final")
    rm = AutoModelForSequenceClassification.from_pretrained(model / "final").eval()

    def predict(messages):
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            return float(rm(input_ids=ids).logits[0, 0])

    # the held-out agreement and its no-model baseline (the train states' mean), recomputed
    target = [s["mean"] for s in held_states]
    errors = [(predict(s["messages"]) - s["mean"]) ** 2 for s in held_states]
    assert held["mse"] == pytest.approx(statistics.fmean(errors), abs=1e-4)
    constant = statistics.fmean(s["mean"] for s in train_states)
    baseline = statistics.fmean((constant - t) ** 2 for t in target)
    assert held["mse_of_the_train_mean"] == pytest.approx(baseline, abs=1e-9)

    config = yaml.safe_load((ipr / "config.yaml").read_text())
    config.update(output_dir=str(tmp_path / "ipr_rm"), step_reward_model=str(model / "final"))
    path = tmp_path / "ipr_rm.yaml"
    path.write_text(yaml.safe_dump(config))
    env = dict(os.environ, IPR_GYM_DATA=str(installed_data), IPR_PROGRESS="0")
    done = subprocess.run([sys.executable, "-m", "ipr_train.cli", "run", str(path)], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rewards = tmp_path / "ipr_rm" / "iter_1" / "step_rewards"
    stats = json.loads((rewards / "stats.json").read_text())
    assert stats["computed"] == 0 and stats.get("policy_calls", 0) == 0
    lines = [json.loads(x) for x in (rewards / "scored.jsonl").read_text().split("\n") if x]
    assert lines
    for line in lines[:6]:
        assert line["messages"][-1]["role"] == "assistant"
        assert line["mean"] == pytest.approx(predict(line["messages"]), abs=1e-4)


def test_a_comparison_reuses_an_sft_run_only_with_the_same_settings(compared, tmp_path):
    from ipr_train.compare import ENVS, base_config, reuse_sft

    spec = ENVS["webshop"]
    sft_run = compared / "runs" / "sft"
    base = base_config(spec, spec.quick, tmp_path / "again")
    (tmp_path / "again").mkdir()
    reuse_sft(sft_run, tmp_path / "again", base)
    for stage in ("experts", "sft", "iter_0/eval"):
        assert (tmp_path / "again" / "sft" / stage / "stats.json").is_file()
    same = (tmp_path / "again" / "sft" / "sft" / "final" / "model.safetensors").read_bytes()
    assert same == (sft_run / "sft" / "final" / "model.safetensors").read_bytes()
    other = dict(base, sft=dict(base["sft"], learning_rate=1e-3))
    (tmp_path / "other").mkdir()
    with pytest.raises(ValueError, match="its sft settings differ"):
        reuse_sft(sft_run, tmp_path / "other", other)
    assert not (tmp_path / "other" / "sft").exists()


def test_an_sft_model_short_of_the_target_runs_no_method(compared, installed_data, monkeypatch):
    """With a target the SFT model misses, the comparison stops after SFT and its table says
    why instead of printing rows; the measured value is the SFT evaluation's mean."""
    import dataclasses

    from ipr_train import compare as comparison

    monkeypatch.setenv("IPR_GYM_DATA", str(installed_data))
    monkeypatch.setenv("IPR_PROGRESS", "0")
    spec = comparison.ENVS["webshop"]
    quick = dataclasses.replace(spec.quick, sft_target=("test", "reward", 1.5))
    monkeypatch.setitem(comparison.ENVS, "webshop", dataclasses.replace(spec, quick=quick))
    out = compared / "short"
    record = comparison.compare("webshop", out / "runs", quick=True, results_dir=out / "results",
                                sft_from=compared / "runs" / "sft")  # fmt: skip
    episodes = read_trajectories(compared / "runs" / "sft" / "iter_0" / "eval" /
                                 "WebShop-v0_test.jsonl")  # fmt: skip
    mean = sum(e.reward for e in episodes) / len(episodes)
    assert record["short_of_target"] == {"split": "test", "measure": "reward", "target": 1.5,
                                         "value": pytest.approx(mean)}  # fmt: skip
    assert list(record["methods"]) == ["sft"]
    assert not any((out / "runs" / m).exists() for m in METHODS)
    table = (out / "results" / "compare_webshop_quick.md").read_text()
    assert "Not informative at this scale" in table and f"{mean:.3f}" in table
    rows = [line.split(" | ")[0] for line in table.splitlines() if line.startswith("| ")]
    assert rows == ["| method", "| SFT"]


def test_the_target_is_met_at_equality():
    from ipr_train.compare import ENVS, short_of_target

    budget = ENVS["alfworld"].full
    split, measure, target = budget.sft_target
    at = {"scores": {split: {measure: target}}}
    below = {"scores": {split: {measure: target - 1e-9}}}
    assert short_of_target(budget, at) is None
    assert short_of_target(budget, below)["value"] == target - 1e-9
    assert short_of_target(ENVS["webshop"].full, below) is None  # no target: methods run


def test_resuming_with_another_model_size_is_refused(tmp_path):
    """A comparison folder whose model was built at another size is not silently reused."""
    from ipr_train.compare import compare

    (tmp_path / "experts.jsonl").write_text("")
    (tmp_path / "tiny-llama").mkdir()
    (tmp_path / "tiny-llama" / "config.json").write_text(
        json.dumps({"hidden_size": 64, "num_hidden_layers": 2})
    )
    with pytest.raises(ValueError, match="width 64 and 2 layers, the comparison's 128 and 2"):
        compare("webshop", tmp_path, quick=True)
