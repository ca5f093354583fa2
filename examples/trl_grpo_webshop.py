"""GRPO with TRL against WebShop served over OpenEnv's protocol.

    python examples/trl_grpo_webshop.py                     # starts `ipr-gym serve ipr/WebShop-v0`
    python examples/trl_grpo_webshop.py --url http://127.0.0.1:8001 --model path/to/hf-model

TRL's ``GRPOTrainer`` generates through ``rollout_func``: each completion is played in a
session of its own on the env server (``IPRClient``, OpenEnv's client): the goal's episode
is reset, the completion is the query of the agent's first action (the prompt ends with
``search[``), and the reward is WebShop's page score of the results it lists
(``info["progress"]``, IPR's App. B score of a page, asked for with ``progress=True``) plus
the env's reward. Without ``--model`` a tiny model and tokenizer are built offline (no hub),
so the example runs on a CPU in about a minute; with a real model it is the same code.
Prints a JSON summary last: optimizer steps, episodes played, rewards, gradient norms.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

ENV_ID = "ipr/WebShop-v0"


def goals(url: str, count: int) -> list[tuple[Any, str]]:
    """(task, instruction) of the first ``count`` goals of the server's split."""
    from ipr_gym.service.remote_env import post_json

    tasks = post_json(f"{url}/ipr/tasks", {})["tasks"][:count]
    return [(t, post_json(f"{url}/reset", {"task": t})["observation"]["instruction"])
            for t in tasks]  # fmt: skip


def prompt(instruction: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"WebShop. {instruction}\nAction: search["}]


def tiny_model(folder: Path, texts: list[str]) -> Path:
    from ipr_train.tiny import build_model, build_tokenizer

    tokenizer = build_tokenizer(texts)
    build_model(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_rollout(url: str, task_of: dict[str, Any], max_new_tokens: int, played: list[float]):
    import torch

    from ipr_gym.service.client import IPRClient

    def rollout(prompts: list[Any], trainer: Any) -> dict[str, Any]:
        model, tokenizer = trainer.model, trainer.processing_class
        out: dict[str, list[Any]] = {"prompt_ids": [], "completion_ids": [], "logprobs": [],
                                     "env_reward": []}  # fmt: skip
        for conversation in prompts:
            text = tokenizer.apply_chat_template(conversation, add_generation_prompt=True,
                                                 tokenize=False)  # fmt: skip
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                generated = model.generate(
                    torch.tensor([ids], device=model.device), do_sample=True, temperature=1.0,
                    top_k=0, top_p=1.0, max_new_tokens=max_new_tokens, output_scores=True,
                    return_dict_in_generate=True, pad_token_id=tokenizer.pad_token_id,
                )  # fmt: skip
            completion = generated.sequences[0, len(ids) :].tolist()
            steps = zip(generated.scores, completion, strict=False)
            logprobs = [torch.log_softmax(s[0].float(), -1)[t].item() for s, t in steps]
            query = tokenizer.decode(completion, skip_special_tokens=True).split("]")[0].strip()
            with IPRClient(url).sync() as client:  # one OpenEnv session per episode
                client.reset(task=task_of[conversation[-1]["content"]], options={"progress": True})
                step = client.step(f"search[{query}]").observation
            reward = float(step.reward or 0.0) + float(step.info.get("progress", 0.0))
            played.append(reward)
            out["prompt_ids"].append(ids)
            out["completion_ids"].append(completion)
            out["logprobs"].append(logprobs)
            out["env_reward"].append(reward)
        return out

    return rollout


def env_reward(completions: list[Any], env_reward: list[float], **_: Any) -> list[float]:
    return list(env_reward)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="an env server (default: start one here)")
    parser.add_argument("--model", help="a Hugging Face model folder (default: a tiny one)")
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps")
    parser.add_argument("--goals", type=int, default=16)
    parser.add_argument("--output", help="where the trainer writes (default: a temp folder)")
    args = parser.parse_args(argv)

    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from ipr_gym.service.process import start_server

    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(start_server(ENV_ID, "--split", "test")).url
        output = Path(args.output or stack.enter_context(tempfile.TemporaryDirectory()))
        pairs = goals(url, args.goals)
        prompts = [prompt(instruction) for _, instruction in pairs]
        task_of = {p[-1]["content"]: task for p, (task, _) in zip(prompts, pairs, strict=True)}
        model = args.model or str(tiny_model(output / "tiny", [p[-1]["content"] for p in prompts]))
        played: list[float] = []
        config = GRPOConfig(
            output_dir=str(output / "grpo"), max_steps=args.steps, per_device_train_batch_size=4,
            num_generations=4, max_completion_length=8, learning_rate=1e-3, beta=0.0,
            logging_steps=1, report_to="none", save_strategy="no", use_cpu=True, seed=0,
        )  # fmt: skip
        trainer = GRPOTrainer(
            model=model, reward_funcs=env_reward, args=config,
            train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
            rollout_func=make_rollout(url, task_of, config.max_completion_length, played),
        )  # fmt: skip
        trainer.train()
        logs = [e for e in trainer.state.log_history if "reward" in e]
        summary = {"optimizer_steps": trainer.state.global_step, "episodes": len(played),
                   "mean_reward_per_step": [e["reward"] for e in logs],
                   "grad_norm_per_step": [e["grad_norm"] for e in logs],
                   "episode_rewards": played, "server": url}  # fmt: skip
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
