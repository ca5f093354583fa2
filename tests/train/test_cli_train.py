"""``ipr-train sft CONFIG`` then ``ipr-train eval CONFIG``, from YAML, on the CPU."""

from __future__ import annotations

import yaml

from ipr_train.cli import main
from ipr_train.records import Trajectory, Turn, read_trajectories, write_jsonl


def test_sft_then_eval_from_yaml(tmp_path, tiny_dir, train_conversations, capsys):
    data = tmp_path / "expert.jsonl"
    write_jsonl(data, [Trajectory("ipr/WebShop-v0", i, tuple(Turn(**m) for m in c))
                       for i, c in enumerate(train_conversations[:20])])  # fmt: skip
    sft = tmp_path / "sft.yaml"
    sft.write_text(yaml.safe_dump({
        "model": str(tiny_dir), "data": [str(data)], "output_dir": str(tmp_path / "sft"),
        "epochs": 1, "learning_rate": 1e-3, "batch_size": 2, "max_length": 2048,
    }))  # fmt: skip
    assert main(["sft", str(sft)]) == 0
    assert "10 steps, loss" in capsys.readouterr().out
    evaluation = tmp_path / "eval.yaml"
    evaluation.write_text(yaml.safe_dump({
        "policy": {"backend": "hf", "model": str(tmp_path / "sft" / "final"), "device": "cpu"},
        "envs": [{"id": "ipr/WebShop-v0", "split": "test", "limit": 2}],
        "output_dir": str(tmp_path / "eval"), "max_new_tokens": 24, "slots": 2,
    }))  # fmt: skip
    assert main(["eval", str(evaluation)]) == 0
    table = capsys.readouterr().out
    assert table.startswith("| env | split | episodes | avg reward | success | avg steps |")
    assert "| ipr/WebShop-v0 | test | 2 |" in table
    saved = read_trajectories(tmp_path / "eval" / "WebShop-v0_test.jsonl")
    assert len(saved) == 2 and all(1 <= len(t.steps) <= 10 for t in saved)
    assert (tmp_path / "eval" / "results.md").read_text().strip() == table.strip()


def test_bad_config_keys_are_named(tmp_path):
    import pytest

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"model": "m", "data": [], "output_dir": "o", "lr": 1}))
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['lr'\]"):
        main(["sft", str(bad)])
