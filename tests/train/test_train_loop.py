"""The one training loop: loss normalised by the assistant tokens of the whole accumulation
window, the schedule counted in optimizer steps (also on 2 processes), a last partial
window that still steps, and resumes that refuse a changed run."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

from ipr_train.config import ConfigError, SFTConfig
from ipr_train.masking import IGNORE, encode
from ipr_train.records import Trajectory, Turn, write_jsonl
from ipr_train.sft import run_sft


def write_data(path, conversations):
    write_jsonl(path, [Trajectory("ipr/WebShop-v0", i, tuple(Turn(**m) for m in c))
                       for i, c in enumerate(conversations)])  # fmt: skip
    return path


def cfg(tiny_dir, data, out, **kw) -> SFTConfig:
    base = dict(model=str(tiny_dir), data=[str(data)], output_dir=str(out), epochs=1,
                learning_rate=1e-3, batch_size=1, max_length=1024, warmup_ratio=0.0,
                max_grad_norm=None)  # fmt: skip
    return SFTConfig(**(base | kw))


def mean_nll(model_dir, conversations) -> float:
    """The loss of a window as it should be: summed NLL of every assistant token of the
    window divided by the number of those tokens (not a mean of per-batch means)."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    total, count = 0.0, 0
    with torch.no_grad():
        for c in conversations:
            enc = encode(tokenizer, c, 1024)
            logits = model(torch.tensor([enc.input_ids])).logits[0, :-1]
            labels = torch.tensor(enc.labels[1:])
            keep = labels != IGNORE
            logp = torch.log_softmax(logits, -1)[keep].gather(1, labels[keep][:, None])
            total -= logp.sum().item()
            count += int(keep.sum())
    return total / count


def test_a_window_weighs_every_assistant_token_the_same(tiny_dir, train_conversations, tmp_path):
    # two examples of very different lengths
    pair = sorted(train_conversations[:8], key=lambda c: sum(len(m["content"]) for m in c))
    pair = [pair[0], pair[-1]]
    data = write_data(tmp_path / "pair.jsonl", pair)
    whole = run_sft(cfg(tiny_dir, data, tmp_path / "whole", batch_size=2))
    split = run_sft(cfg(tiny_dir, data, tmp_path / "split", batch_size=1, grad_accum=2))
    assert whole.steps == split.steps == 1
    expected = mean_nll(tiny_dir, pair)  # the untouched model's token-mean NLL
    assert whole.loss_history[0] == pytest.approx(expected, rel=1e-4)
    assert split.loss_history[0] == pytest.approx(expected, rel=1e-4)
    a = AutoModelForCausalLM.from_pretrained(tmp_path / "whole" / "final").state_dict()
    b = AutoModelForCausalLM.from_pretrained(tmp_path / "split" / "final").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_schedule_counts_optimizer_steps_and_a_partial_window_steps(
    tiny_dir, train_conversations, tmp_path
):
    data = write_data(tmp_path / "seven.jsonl", train_conversations[:7])
    result = run_sft(cfg(tiny_dir, data, tmp_path / "run", grad_accum=2, epochs=2,
                         lr_scheduler="cosine", warmup_ratio=0.25))  # fmt: skip
    total = math.ceil(7 * 2 / 2)  # 14 micro-batches, 2 per step
    assert result.steps == total
    warmup = int(0.25 * total)
    for step, lr in enumerate(result.lr_history):  # transformers' cosine, written out
        if step < warmup:
            expected = 1e-3 * step / warmup
        else:
            progress = (step - warmup) / (total - warmup)
            expected = 1e-3 * 0.5 * (1 + math.cos(math.pi * progress))
        assert lr == pytest.approx(expected, abs=1e-12)
    odd = run_sft(cfg(tiny_dir, data, tmp_path / "odd", grad_accum=2))
    assert odd.steps == 4  # 7 micro-batches: the last window holds one and still steps


def test_a_step_budget_cycles_the_data_and_counts_the_trained_tokens(
    tiny_dir, train_conversations, tmp_path
):
    """``max_steps`` replaces epochs: 3 examples, 5 optimizer steps of one example each is
    every example once, then two of them again (reshuffled); the trained tokens are the
    assistant tokens of the batches it stepped on, counted here from the encoding."""
    three = train_conversations[:3]
    data = write_data(tmp_path / "three.jsonl", three)
    result = run_sft(cfg(tiny_dir, data, tmp_path / "run", max_steps=5, epochs=1,
                         record_batches=True))  # fmt: skip
    assert result.steps == 5
    batches = [json.loads(line)["index"] for line in
               (tmp_path / "run" / "batches" / "rank0.jsonl").read_text().splitlines()]  # fmt: skip
    assert sorted(i for b in batches[:3] for i in b) == [0, 1, 2]
    assert len(batches) == 5 and len({i for b in batches[3:] for i in b}) == 2
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    labelled = [sum(x != IGNORE for x in encode(tokenizer, c, 1024).labels[1:]) for c in three]
    assert result.trained_tokens == sum(labelled[i] for b in batches for i in b)


def test_a_resume_with_other_data_is_refused(tiny_dir, train_conversations, tmp_path):
    first = write_data(tmp_path / "a.jsonl", train_conversations[:3])
    other = write_data(tmp_path / "b.jsonl", train_conversations[3:6])
    run_sft(cfg(tiny_dir, first, tmp_path / "run", save_steps=1))
    with pytest.raises(ConfigError, match=r"different data.*use another output_dir"):
        run_sft(cfg(tiny_dir, other, tmp_path / "run", save_steps=1))
    with pytest.raises(ConfigError, match="different schedule"):
        run_sft(cfg(tiny_dir, first, tmp_path / "run", learning_rate=5e-4))
    run_sft(cfg(tiny_dir, other, tmp_path / "run", resume=False))  # starting over is allowed


def test_two_processes_see_disjoint_examples_with_the_single_process_schedule(
    tiny_dir, train_conversations, tmp_path
):
    data = write_data(tmp_path / "eight.jsonl", train_conversations[:8])
    common = dict(
        model=str(tiny_dir),
        data=[str(data)],
        epochs=2,
        learning_rate=1e-3,
        max_length=512,
        warmup_ratio=0.2,
        lr_scheduler="cosine",
        record_batches=True,
    )
    two = tmp_path / "two.yaml"  # 2 processes x 1 example x 2 accumulation = 4 per step
    two.write_text(yaml.safe_dump(common | {"output_dir": str(tmp_path / "two"),
                                            "batch_size": 1, "grad_accum": 2}))  # fmt: skip
    env = dict(os.environ, IPR_PROGRESS="0", OMP_NUM_THREADS="1")
    with socket.socket() as probe:  # a port nothing else holds now, not one derived from a pid
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
              "--master_addr", "127.0.0.1", "--master_port", str(port), "-m", "ipr_train.cli",
              "sft", str(two)]  # fmt: skip
    done = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[:3000] + "\n[...]\n" + done.stderr[-3000:]
    one = run_sft(SFTConfig(**common, output_dir=str(tmp_path / "one"), batch_size=4))
    ranks = [[json.loads(line) for line in (tmp_path / "two" / "batches" / f"rank{r}.jsonl")
              .read_text().splitlines()] for r in (0, 1)]  # fmt: skip
    assert len(ranks[0]) == len(ranks[1]) == 8  # 4 of the 8 examples per epoch, 2 epochs
    for epoch in (0, 1):
        seen = [i for r in ranks for b in r[4 * epoch : 4 * epoch + 4] for i in b["index"]]
        assert sorted(seen) == list(range(8))  # each example once per epoch, on one rank
    summary = json.loads((tmp_path / "two" / "sft_summary.json").read_text())
    assert summary["steps"] == one.steps == 4
    assert summary["lr_history"] == pytest.approx(one.lr_history, abs=1e-12)
