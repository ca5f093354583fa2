"""What every method shares: its config's common fields (``MethodConfig``; the settings of
its sections in ``ipr_train.methods.settings``), and the stages
(``MethodRun``): experts, SFT, exploration, Monte Carlo step rewards, pairs, reference
log-probabilities, DPO training, evaluation and the report's row, each a folder of the run
directory (``ipr_train.run``), so a run resumes where it stopped. A method is a config and
an ``iteration`` that composes these stages (``ipr_train.methods.ipr`` and its neighbours).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from ipr_train.config import Config, EnvEval
from ipr_train.evaluate import env_setup, evaluate
from ipr_train.explore import ExpertPath, explore, replay_experts
from ipr_train.methods.settings import DPOSettings, Generation, MonteCarlo, TrainSettings
from ipr_train.pairs import build_pairs
from ipr_train.policies import make_policy
from ipr_train.progress import progress_bar
from ipr_train.records import read_pairs, read_trajectories, write_jsonl, write_lines
from ipr_train.report import write_report
from ipr_train.rollout import RolloutCounters
from ipr_train.run import RunDir
from ipr_train.step_rewards import Branch, EstimateCache, estimate_step_rewards


class MethodConfig(Config):
    """What every method's config holds: the model, the env and its experts, the SFT, the
    iterations, exploration and evaluation settings, the generation backend."""

    method: str
    output_dir: str
    model: str = Field(description="HF model folder: the base model (sft set) or an SFT model")
    env: EnvEval = Field(description="where the agent explores: the experts' env and split")
    experts: str | None = Field(None, description="expert JSONL; null: `ipr-train experts`")
    sft: TrainSettings | None = Field(
        default_factory=lambda: TrainSettings(),
        description="null: `model` is already the SFT model",
    )
    eval: list[EnvEval] = Field(default_factory=list)
    intermediate_eval_limit: int | None = Field(
        None, ge=1, description="iterations before the last: evaluate on the first N tasks of "
        "each eval split only; null: on all of them (the SFT model and the last iteration "
        "always are)",
    )  # fmt: skip
    explore_limit: int | None = Field(
        None, ge=1, description="explore from the first N experts; null: all"
    )
    iterations: int = Field(3, ge=0)
    explore: Generation = Field(default_factory=lambda: Generation())
    eval_generation: Generation = Field(default_factory=lambda: Generation())
    policy: dict[str, Any] = Field(
        default_factory=lambda: {"backend": "hf"}, description="generation backend and its options"
    )
    workers: int = Field(0, ge=0)
    slots: int = Field(16, ge=1)
    data_dir: str | None = None


class MethodRun:
    """The stages every method composes, each a method that fills its folder of the run
    directory; a method's ``iteration`` composes them (its paper's recipe), ``run`` runs the
    experts, the SFT model and its evaluation, then the iterations."""

    NAME = "method"
    cfg: MethodConfig

    def __init__(self, cfg: MethodConfig):
        from ipr_gym.react import get_protocol
        from ipr_train.determinism import pin_threads

        pin_threads()  # before any stage computes, a resumed one too
        self.cfg = cfg
        self.run_dir = RunDir(cfg.output_dir, cfg.model_dump(mode="json"))
        self.title = f"{self.NAME} on {cfg.env.id} ({cfg.env.split})"
        self.env_kwargs, self.max_steps = env_setup(cfg.env, cfg.data_dir)
        self.data_dir = self.env_kwargs.get("data_dir")
        self.protocol = get_protocol(cfg.env.id)
        self.rows: list[dict[str, Any]] = []
        self.cache = EstimateCache()

    # ------------------------------------------------------------------ the pipeline
    def run(self) -> list[dict[str, Any]]:
        cfg, run = self.cfg, self.run_dir
        run.stage("experts", self.experts_stage)
        self.experts = read_trajectories(run.path("experts") / "experts.jsonl")
        self.sft_model = self.initial_model()
        run.stage("iter_0/eval", lambda folder: self.eval_stage(folder, self.sft_model))
        seconds = {s: run.stats(s)["seconds"] for s in ("experts", "sft") if run.done(s)}
        self.record(0, "SFT", {}, seconds | {"eval": run.stats("iter_0/eval")["seconds"]})
        agent = self.sft_model
        for k in range(1, cfg.iterations + 1):
            agent = self.iteration(k, agent)
        return self.rows

    def initial_model(self) -> str:
        """The SFT model: stage ``sft`` of the base model, or ``model`` itself (``sft`` null)."""
        if self.cfg.sft is None:
            return self.cfg.model
        self.run_dir.stage("sft", self.sft_stage)
        return str(self.run_dir.path("sft") / "final")

    def iteration(self, k: int, agent: str) -> str:
        """Iteration ``k`` from ``agent``: the method's recipe; the next iteration's agent."""
        raise NotImplementedError

    def explore_from(
        self, k: int, agent: str, *, start_only: bool = True, n: int = 1,
        limit: int | None = None, all_states: bool = False,
    ) -> list[ExpertPath]:  # fmt: skip
        """Stage ``iter_k/explore`` (see ``explore_stage``), by default with the agent's own
        episodes from each expert's task start (``n`` per task, from the one start
        snapshot); the expert paths."""
        from ipr_gym.pool import EnvPool

        cfg, it = self.cfg, f"iter_{k}"
        with EnvPool(
            cfg.env.id, cfg.slots, workers=cfg.workers, env_kwargs=self.env_kwargs
        ) as pool:
            paths, _ = replay_experts(
                pool, self.protocol, self.experts[: cfg.explore_limit], data_dir=self.data_dir
            )
            self.run_dir.stage(
                f"{it}/explore",
                lambda f: self.explore_stage(f, pool, paths, agent, it, start_only=start_only,
                                             n=n, limit=limit, all_states=all_states),
            )  # fmt: skip
        return paths

    def optimise_and_evaluate(self, k: int, agent: str, *, reference: str, dpo: DPOSettings) -> str:
        """Reference log-probabilities, DPO on the iteration's pairs (when any), evaluation
        and the report's row; the next iteration's agent."""
        run, it = self.run_dir, f"iter_{k}"
        pairs = read_pairs(run.path(f"{it}/pairs") / "pairs.jsonl")
        if pairs:
            run.stage(f"{it}/reference",
                      lambda f: self.reference_stage(f, pairs, reference, dpo))  # fmt: skip
            run.stage(f"{it}/train", lambda f: self.train_stage(f, pairs, agent, k, dpo))
            agent = str(run.path(f"{it}/train") / "final")
        return self.evaluate_iteration(k, agent)

    def evaluate_iteration(self, k: int, agent: str) -> str:
        """Stage ``iter_k/eval`` of the iteration's model and the report's row (the seconds of
        every stage the iteration ran); ``agent``, the next iteration's."""
        run, it = self.run_dir, f"iter_{k}"
        limit = self.cfg.intermediate_eval_limit if k < self.cfg.iterations else None
        run.stage(f"{it}/eval", lambda f: self.eval_stage(f, agent, limit))
        folder = run.path(it)
        seconds = {
            s.name: run.stats(f"{it}/{s.name}")["seconds"]
            for s in sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime)
            if s.is_dir() and run.done(f"{it}/{s.name}")
        }
        self.record(k, f"{self.NAME} iteration {k}", _iteration_cost(run, it), seconds)
        return agent

    # ------------------------------------------------------------------ the stages
    def experts_stage(self, folder: Path) -> dict[str, Any]:
        from ipr_train.experts import build_experts, write_experts

        cfg = self.cfg
        if cfg.experts is not None:
            kept = read_trajectories(cfg.experts)[: cfg.env.limit]
            write_jsonl(folder / "experts.jsonl", kept)
            return {"experts": len(kept)}
        kept, report = build_experts(
            cfg.env.id,
            cfg.env.split,
            data_dir=self.data_dir,
            limit=cfg.env.limit,
            env_kwargs=cfg.env.kwargs,
            workers=cfg.workers,
        )
        write_experts(folder / "experts.jsonl", kept, report)
        return {"experts": len(kept), "summary": report.summary()}

    def sft_stage(
        self, folder: Path, data: str | None = None, model: str | None = None
    ) -> dict[str, Any]:
        """SFT of ``model`` (default: the base model, ``cfg.model``) on ``data`` (default:
        the expert set)."""
        from ipr_train.config import SFTConfig
        from ipr_train.sft import run_sft

        assert self.cfg.sft is not None
        data = data or str(self.run_dir.path("experts") / "experts.jsonl")
        result = run_sft(
            SFTConfig(
                model=model or self.cfg.model,
                data=[data],
                output_dir=str(folder),
                resume=False,
                **self.cfg.sft.model_dump(),
            )
        )
        return {
            "steps": result.steps,
            "optimizer_steps": result.steps,
            "trained_tokens": result.trained_tokens,
            "loss_first": result.loss_history[0],
            "loss_last": result.loss_history[-1],
        }

    def policy(self, model: str) -> Any:
        """The generation backend with ``model``'s weights, for one stage (``with``: a backend
        in a process of its own, vLLM's by default, ends with the stage)."""
        return make_policy({"backend": "hf", **self.cfg.policy, "model": model})

    def eval_stage(self, folder: Path, model: str, limit: int | None = None) -> dict[str, Any]:
        """``model`` on every eval split (its first ``limit`` tasks, where fewer are asked)."""
        cfg, counters = self.cfg, RolloutCounters()
        envs = [e if limit is None or (e.limit or limit + 1) <= limit
                else e.model_copy(update={"limit": limit}) for e in cfg.eval]  # fmt: skip
        with self.policy(model) as policy:
            results = evaluate(
                policy,
                envs,
                cfg.eval_generation.params(),
                folder,
                workers=cfg.workers,
                slots=cfg.slots,
                data_dir=cfg.data_dir,
                counters=counters,
            )
        (folder / "results.json").write_text(json.dumps([r.__dict__ for r in results]))
        return _counted(counters)

    def explore_stage(
        self, folder: Path, pool: Any, paths: list[ExpertPath], agent: str, it: str,
        start_only: bool = False, n: int = 1, limit: int | None = None,
        all_states: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        """The agent's branches (``n`` per prefix, ``limit`` steps at most) and the state
        after each one's first step (``all_states``: after every step, ``states.pkl``)."""
        total = len(paths) if start_only else sum(len(p.trajectory.steps) for p in paths)
        with progress_bar(total * n, f"{it} explore") as bar, self.policy(agent) as policy:
            result = explore(
                policy,
                pool,
                self.protocol,
                paths,
                self.cfg.explore.params(n),
                max_steps=self.max_steps,
                data_dir=self.data_dir,
                progress=bar,
                start_only=start_only,
                limit=limit,
            )
        write_jsonl(folder / "branches.jsonl", result.trajectories)
        assert result.snapshots is not None
        firsts = [s[1] if len(s) > 1 else None for s in result.snapshots]
        (folder / "first_states.pkl").write_bytes(pickle.dumps(firsts))
        if all_states:
            (folder / "states.pkl").write_bytes(pickle.dumps(result.snapshots))
        return _counted(result.counters)

    def rewards_stage(
        self, folder: Path, pool: Any, todo: dict[tuple[int, int, str], Branch], it: str,
        mc: MonteCarlo, reward_model: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """The step reward of every branch: Monte Carlo with ``mc`` (``estimates.jsonl``,
        cached across iterations; the scorer the SFT model unless ``mc.scorer`` names
        another), or the step reward model's prediction where ``reward_model`` is set;
        ``step_rewards.json`` the means, ``scored.jsonl`` each (prefix, action) with its
        value (a reward model's training data)."""
        from ipr_train.reward_model import action_conversation, predict_step_rewards

        keys = list(todo)
        conversations = [action_conversation(todo[key].messages) for key in keys]
        model = reward_model
        if model is not None:
            values = predict_step_rewards(model, conversations)
            write_jsonl(folder / "estimates.jsonl", [])
            self._write_step_rewards(folder, keys, values, conversations)
            return {"computed": 0, "reused": 0, "predicted": len(values)}
        scorer_id = "sft" if mc.scorer is None else str(mc.scorer)
        with (
            progress_bar(None, f"{it} step rewards") as bar,
            self.policy(mc.scorer or self.sft_model) as policy,
        ):
            estimates, counted = estimate_step_rewards(
                policy,
                scorer_id,
                pool,
                self.protocol,
                [todo[key] for key in keys],
                self.cache,
                mc.params(mc.n),
                max_steps=self.max_steps,
                data_dir=self.data_dir,
                progress=bar,
            )
        write_jsonl(folder / "estimates.jsonl", estimates)
        self._write_step_rewards(folder, keys, [e.mean for e in estimates], conversations)
        return {"computed": counted.computed, "reused": counted.reused, **_counted(counted.rollout)}

    @staticmethod
    def _write_step_rewards(
        folder: Path, keys: list[tuple[int, int, str]], values: list[float],
        conversations: list[list[dict[str, str]]],
    ) -> None:  # fmt: skip
        means = [{"expert": e, "step": t, "side": side, "mean": v}
                 for (e, t, side), v in zip(keys, values, strict=True)]  # fmt: skip
        (folder / "step_rewards.json").write_text(json.dumps(means))
        write_lines(folder / "scored.jsonl",
                    (json.dumps({**m, "messages": c}, ensure_ascii=False)
                     for m, c in zip(means, conversations, strict=True)))  # fmt: skip

    def pairs_stage(
        self, folder: Path, paths: list[ExpertPath], branches: list[Any], it: str, k: int, *,
        kinds: Sequence[str], rule: str, margin: float, tau: float = 0.0,
        at_start: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        """The iteration's pairs of ``kinds`` from the agent's branches (``ipr_train.pairs``:
        ``rule``, the outcome ``margin``, the step reward gap ``tau``, step pairs at t = 0
        when ``at_start``); step pairs read the iteration's step rewards."""
        by_side: dict[str, dict[tuple[int, int], float]] = {"expert": {}, "agent": {}}
        if "step" in kinds:
            estimates = self.run_dir.path(f"{it}/step_rewards") / "step_rewards.json"
            for m in json.loads(estimates.read_text()):
                by_side[m["side"]][(m["expert"], m["step"])] = m["mean"]
        pairs = build_pairs(
            paths, branches, by_side["expert"], by_side["agent"], tau=tau, iteration=k,
            rule=rule, outcome_margin=margin, kinds=kinds, step_pairs_at_start=at_start,
        )  # fmt: skip
        write_jsonl(folder / "pairs.jsonl", pairs)
        return {
            "step_pairs": sum(p.kind == "step" for p in pairs),
            "outcome_pairs": sum(p.kind == "outcome" for p in pairs),
            "agent_chosen": sum(p.meta["chosen"] == "agent" for p in pairs),
            "signal": len(pairs),
            "signal_unit": "pairs",
        }

    def reference_stage(
        self, folder: Path, pairs: list[Any], model: str, dpo: DPOSettings
    ) -> dict[str, Any]:
        from ipr_train.preference import compute_reference

        compute_reference(
            model,
            pairs,
            folder / "reference.json",
            max_length=dpo.max_length,
            max_prompt_tokens=dpo.max_prompt_tokens,
        )
        return {"pairs": len(pairs)}

    def train_stage(
        self, folder: Path, pairs: list[Any], agent: str, k: int, dpo: DPOSettings
    ) -> dict[str, Any]:
        """DPO (with the loss weights of ``dpo``) of ``agent`` on the iteration's pairs,
        against the reference log-probabilities of stage ``iter_k/reference``."""
        from ipr_train.preference import load_reference, train_on_pairs

        reference = load_reference(self.run_dir.path(f"iter_{k}/reference") / "reference.json")
        loss = {
            key: getattr(dpo, key)
            for key in ("beta", "outcome_weight", "step_weight", "sft_weight", "sft_reduction")
        }
        result = train_on_pairs(
            agent,
            reference,
            pairs,
            dpo.schedule(),
            folder,
            max_length=dpo.max_length,
            max_prompt_tokens=dpo.max_prompt_tokens,
            loss=loss,
            identity={"model": agent, "iteration": k, "loss": self.cfg.method},
        )
        return {"steps": result.steps, "optimizer_steps": result.steps,
                "trained_tokens": result.trained_tokens, "examples": result.examples,
                "loss_history": result.loss_history}  # fmt: skip

    def record(
        self, iteration: int, name: str, cost: dict[str, Any], seconds: dict[str, float]
    ) -> None:
        path = self.run_dir.path(f"iter_{iteration}/eval") / "results.json"
        self.rows.append(
            {
                "iteration": iteration,
                "model": name,
                "cost": cost,
                "seconds": seconds,
                "eval": json.loads(path.read_text()),
            }
        )
        write_report(self.run_dir.root, self.rows, self.title)


def _counted(c: RolloutCounters) -> dict[str, Any]:
    return {
        "policy_calls": c.policy_calls,
        "generated_tokens": c.generated_tokens,
        "prompt_tokens": c.prompt_tokens,
        "env_steps": c.env_steps,
        "env_seconds": round(c.env_seconds, 3),
        "generation_seconds": round(c.generation_seconds, 3),
        "episodes": c.episodes,
        "generation_failures": c.generation_failures,
    }


SIGNAL_KEYS = ("signal", "step_pairs", "outcome_pairs", "agent_chosen", "accepted",
               "advantage_steps", "nonzero_steps")  # fmt: skip
COST_KEYS = ("computed", "reused", "policy_calls", "generated_tokens", "env_steps",
             "optimizer_steps", "trained_tokens")  # fmt: skip


def _iteration_cost(run: RunDir, it: str) -> dict[str, Any]:
    """What the iteration's training stages cost and the training signal they produced
    (evaluation apart), summed over its stages: the policy calls, generated tokens and env
    steps of every stage that played episodes, the Monte Carlo estimates computed and
    reused, the policy's optimizer steps and trained tokens; the signal (``signal``: the
    units that can move the model, whatever the method: pairs, accepted episodes, non-zero
    step advantages) and its parts; the discriminator's accuracy where there is one."""
    cost: dict[str, Any] = dict.fromkeys((*SIGNAL_KEYS, *COST_KEYS), 0)
    for folder in sorted(run.path(it).iterdir()):
        if folder.is_dir() and folder.name != "eval" and run.done(f"{it}/{folder.name}"):
            add_cost(cost, run.stats(f"{it}/{folder.name}"))
    return cost


def add_cost(total: dict[str, Any], part: dict[str, Any]) -> None:
    """Add ``part``'s counts (``SIGNAL_KEYS``, ``COST_KEYS``) to ``total``; its signal unit and
    discriminator accuracy, where it has them, replace ``total``'s."""
    for key in (*SIGNAL_KEYS, *COST_KEYS):
        value = part.get(key, 0)
        total[key] += value if isinstance(value, int) else 0
    for key in ("discriminator_accuracy", "signal_unit"):
        if key in part:
            total[key] = part[key]
