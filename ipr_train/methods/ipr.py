"""IPR (Xiong et al., EMNLP 2024, "Watch Every Step!"): SFT on expert trajectories, then
per iteration explore from every expert prefix (§3.2), estimate step rewards by Monte Carlo
with the SFT model as scorer (Eq. 3-5), build step and outcome pairs (§3.3) and optimise
o-DPO + s-DPO + SFT (Eq. 7-10) against the SFT model as reference; the updated agent
starts the next iteration. Every stage is a folder of the run directory (``ipr_train.run``),
so the command resumes where it stopped.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field

from ipr_train.config import Config, EnvEval
from ipr_train.evaluate import env_setup, evaluate
from ipr_train.explore import ExpertPath, explore, replay_experts
from ipr_train.pairs import PAPER_TAU, build_pairs
from ipr_train.policies import GenerationParams, make_policy
from ipr_train.progress import progress_bar
from ipr_train.records import read_pairs, read_trajectories, write_jsonl, write_lines
from ipr_train.report import write_report
from ipr_train.rollout import RolloutCounters
from ipr_train.run import RunDir
from ipr_train.step_rewards import Branch, EstimateCache, estimate_step_rewards, read_estimates
from ipr_train.train import Schedule

PairKind = Literal["outcome", "step"]


class Generation(Config):
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(256, ge=1)
    seed: int = 0

    def params(self, n: int = 1) -> GenerationParams:
        return GenerationParams(
            temperature=self.temperature,
            top_p=self.top_p,
            max_new_tokens=self.max_new_tokens,
            seed=self.seed,
            n=n,
        )


class MonteCarlo(Generation):
    """The scorer's continuations: IPR samples N = 5 at temperature 1 with the SFT model."""

    n: int = Field(5, ge=1)
    temperature: float = Field(1.0, ge=0)
    scorer: str | None = Field(None, description="model folder; null: the SFT model")


class TrainSettings(Config):
    """The training loop's knobs (``ipr_train.train.Schedule``) and the encoding's."""

    epochs: float = Field(3.0, gt=0)
    max_steps: int | None = Field(
        None, ge=1, description="optimizer steps, cycling the data; set: replaces epochs"
    )  # fmt: skip
    learning_rate: float = Field(2e-5, gt=0)
    batch_size: int = Field(1, ge=1)
    grad_accum: int = Field(1, ge=1)
    lr_scheduler: Literal["cosine", "linear", "constant_with_warmup", "constant"] = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, le=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    max_length: int = Field(4096, ge=8)
    seed: int = 0
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"

    def schedule(self) -> Schedule:
        known = set(Schedule.__dataclass_fields__)
        return Schedule(**{k: v for k, v in self.model_dump().items() if k in known})


class DPOSettings(TrainSettings):
    """IPR's released settings: lr 3e-6, 3 epochs, constant with warmup 0.1; beta in
    [0.1, 0.5]; the SFT term the summed log-likelihood of the chosen side, weight 1."""

    learning_rate: float = Field(3e-6, gt=0)
    lr_scheduler: Literal["cosine", "linear", "constant_with_warmup", "constant"] = (
        "constant_with_warmup"
    )
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    beta: float = Field(0.1, gt=0)
    outcome_weight: float = Field(1.0, ge=0, description="o-DPO (Eq. 7); 0: without it")
    step_weight: float = Field(1.0, ge=0, description="s-DPO (Eq. 8); 0: without it")
    sft_weight: float = Field(1.0, ge=0, description="SFT on chosen (Eq. 9); 0: without it")
    sft_reduction: Literal["sum", "mean"] = "sum"
    max_prompt_tokens: int = Field(2048, ge=1, description="prompt cut from the left")


class IPRConfig(Config):
    method: Literal["ipr"] = "ipr"
    output_dir: str
    model: str = Field(description="HF model folder: the base model (sft set) or an SFT model")
    env: EnvEval = Field(description="where the agent explores: the experts' env and split")
    experts: str | None = Field(None, description="expert JSONL; null: `ipr-train experts`")
    sft: TrainSettings | None = Field(
        default_factory=lambda: TrainSettings(),
        description="null: `model` is already the SFT model",
    )
    eval: list[EnvEval] = Field(default_factory=list)
    explore_limit: int | None = Field(
        None, ge=1, description="explore from the first N experts; null: all"
    )
    iterations: int = Field(3, ge=0)
    explore: Generation = Field(default_factory=lambda: Generation())
    monte_carlo: MonteCarlo = Field(default_factory=lambda: MonteCarlo())
    tau: float | None = Field(None, ge=0, description="null: the paper's value for the env")
    pair_rule: Literal["release", "paper"] = Field(
        "release", description="release: pairs in both directions with outcome_margin; "
        "paper: the expert's side always chosen (ipr_train.pairs)"
    )  # fmt: skip
    outcome_margin: float = Field(0.01, ge=0, description="release rule: outcome gap to pair")
    pair_kinds: list[PairKind] = Field(
        default_factory=lambda: list(get_args(PairKind)),
        description="the pair kinds trained on; an ablation drops one (IPR's --global_traj / "
        "--local_traj)",
    )  # fmt: skip
    step_pairs_at_start: bool = Field(False, description="step pairs at t = 0 (release: no)")
    step_reward_model: str | None = Field(
        None, description="a step reward model's folder (`ipr-train reward-model`) in place "
        "of Monte Carlo; null: Monte Carlo"
    )  # fmt: skip
    dpo: DPOSettings = Field(default_factory=lambda: DPOSettings())
    eval_generation: Generation = Field(default_factory=lambda: Generation())
    policy: dict[str, Any] = Field(
        default_factory=lambda: {"backend": "hf"}, description="generation backend and its options"
    )
    workers: int = Field(0, ge=0)
    slots: int = Field(16, ge=1)
    data_dir: str | None = None


def run_ipr(cfg: IPRConfig) -> list[dict[str, Any]]:
    """Run (or resume) IPR; the report rows, one per evaluated model."""
    return IPRRun(cfg).run()


class IPRRun:
    """The stages of one IPR run, each a method that fills its folder of the run directory;
    another method composes the same stages in its own ``iteration``."""

    NAME = "IPR"

    def __init__(self, cfg: IPRConfig):
        from ipr_gym.react import get_protocol
        from ipr_train.determinism import pin_threads

        pin_threads()  # before any stage computes, a resumed one too
        self.cfg = cfg
        self.run_dir = RunDir(cfg.output_dir, cfg.model_dump(mode="json"))
        self.title = f"{self.NAME} on {cfg.env.id} ({cfg.env.split})"
        self.env_kwargs, self.max_steps = env_setup(cfg.env, cfg.data_dir)
        self.data_dir = self.env_kwargs.get("data_dir")
        self.protocol = get_protocol(cfg.env.id)
        self.tau = cfg.tau if cfg.tau is not None else PAPER_TAU.get(cfg.env.id, 0.01)
        self.rows: list[dict[str, Any]] = []
        self.cache = EstimateCache()

    # ------------------------------------------------------------------ the pipeline
    def run(self) -> list[dict[str, Any]]:
        cfg, run = self.cfg, self.run_dir
        run.stage("experts", self.experts_stage)
        self.experts = read_trajectories(run.path("experts") / "experts.jsonl")
        self.sft_model = self.initial_model()
        self.scorer_model = cfg.monte_carlo.scorer or self.sft_model
        self.scorer_id = "sft" if cfg.monte_carlo.scorer is None else str(cfg.monte_carlo.scorer)
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
        """Explore, estimate, pair, train, evaluate; the next iteration's agent."""
        from ipr_gym.pool import EnvPool

        cfg, run, it = self.cfg, self.run_dir, f"iter_{k}"
        for j in range(1, k):  # the estimates of earlier iterations
            self.cache.add(read_estimates(run.path(f"iter_{j}/step_rewards") / "estimates.jsonl"))
        with EnvPool(
            cfg.env.id, cfg.slots, workers=cfg.workers, env_kwargs=self.env_kwargs
        ) as pool:
            paths, _ = replay_experts(
                pool, self.protocol, self.experts[: cfg.explore_limit], data_dir=self.data_dir
            )
            run.stage(f"{it}/explore", lambda f: self.explore_stage(f, pool, paths, agent, it))
            branches = read_trajectories(run.path(f"{it}/explore") / "branches.jsonl")
            firsts = pickle.loads((run.path(f"{it}/explore") / "first_states.pkl").read_bytes())
            todo = _branches(paths, branches, firsts)
            run.stage(f"{it}/step_rewards", lambda f: self.rewards_stage(f, pool, todo, it))
        run.stage(f"{it}/pairs", lambda f: self.pairs_stage(f, paths, branches, it, k))
        return self.optimise_and_evaluate(k, agent, reference=self.sft_model)

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

    def optimise_and_evaluate(self, k: int, agent: str, *, reference: str) -> str:
        """Reference log-probabilities, DPO on the iteration's pairs (when any), evaluation
        and the report's row; the next iteration's agent."""
        run, it = self.run_dir, f"iter_{k}"
        pairs = read_pairs(run.path(f"{it}/pairs") / "pairs.jsonl")
        if pairs:
            run.stage(f"{it}/reference", lambda f: self.reference_stage(f, pairs, reference))
            run.stage(f"{it}/train", lambda f: self.train_stage(f, pairs, agent, it, k))
            agent = str(run.path(f"{it}/train") / "final")
        return self.evaluate_iteration(k, agent)

    def evaluate_iteration(self, k: int, agent: str) -> str:
        """Stage ``iter_k/eval`` of the iteration's model and the report's row (the seconds of
        every stage the iteration ran); ``agent``, the next iteration's."""
        run, it = self.run_dir, f"iter_{k}"
        run.stage(f"{it}/eval", lambda f: self.eval_stage(f, agent))
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
        return make_policy({"backend": "hf", **self.cfg.policy, "model": model})

    def eval_stage(self, folder: Path, model: str) -> dict[str, Any]:
        cfg, counters = self.cfg, RolloutCounters()
        results = evaluate(
            self.policy(model),
            cfg.eval,
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
        with progress_bar(total * n, f"{it} explore") as bar:
            result = explore(
                self.policy(agent),
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
        self, folder: Path, pool: Any, todo: dict[tuple[int, int, str], Branch], it: str
    ) -> dict[str, Any]:
        """The step reward of every branch: Monte Carlo (``estimates.jsonl``, cached across
        iterations), or the step reward model's prediction where ``step_reward_model`` is
        set; ``step_rewards.json`` the means, ``scored.jsonl`` each (prefix, action) with
        its value (a reward model's training data)."""
        from ipr_train.reward_model import action_conversation, predict_step_rewards

        keys = list(todo)
        conversations = [action_conversation(todo[key].messages) for key in keys]
        model = getattr(self.cfg, "step_reward_model", None)
        if model is not None:
            values = predict_step_rewards(model, conversations)
            write_jsonl(folder / "estimates.jsonl", [])
            self._write_step_rewards(folder, keys, values, conversations)
            return {"computed": 0, "reused": 0, "predicted": len(values)}
        mc = self.cfg.monte_carlo
        with progress_bar(None, f"{it} step rewards") as bar:
            estimates, counted = estimate_step_rewards(
                self.policy(self.scorer_model),
                self.scorer_id,
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
        self, folder: Path, paths: list[ExpertPath], branches: list[Any], it: str, k: int,
        kinds: tuple[str, ...] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """The iteration's pairs of ``kinds`` (default: the config's ``pair_kinds``)."""
        cfg = self.cfg
        kinds = tuple(cfg.pair_kinds) if kinds is None else kinds
        by_side: dict[str, dict[tuple[int, int], float]] = {"expert": {}, "agent": {}}
        if "step" in kinds:
            estimates = self.run_dir.path(f"{it}/step_rewards") / "step_rewards.json"
            for m in json.loads(estimates.read_text()):
                by_side[m["side"]][(m["expert"], m["step"])] = m["mean"]
        pairs = build_pairs(
            paths, branches, by_side["expert"], by_side["agent"], tau=self.tau, iteration=k,
            rule=cfg.pair_rule, outcome_margin=cfg.outcome_margin, kinds=kinds,
            step_pairs_at_start=cfg.step_pairs_at_start,
        )  # fmt: skip
        write_jsonl(folder / "pairs.jsonl", pairs)
        return {
            "step_pairs": sum(p.kind == "step" for p in pairs),
            "outcome_pairs": sum(p.kind == "outcome" for p in pairs),
            "agent_chosen": sum(p.meta["chosen"] == "agent" for p in pairs),
            "signal": len(pairs),
            "signal_unit": "pairs",
        }

    def reference_stage(self, folder: Path, pairs: list[Any], model: str) -> dict[str, Any]:
        from ipr_train.preference import compute_reference

        compute_reference(
            model,
            pairs,
            folder / "reference.json",
            max_length=self.cfg.dpo.max_length,
            max_prompt_tokens=self.cfg.dpo.max_prompt_tokens,
        )
        return {"pairs": len(pairs)}

    def train_stage(
        self, folder: Path, pairs: list[Any], agent: str, it: str, k: int
    ) -> dict[str, Any]:
        from ipr_train.preference import load_reference, train_on_pairs

        dpo = self.cfg.dpo
        reference = load_reference(self.run_dir.path(f"{it}/reference") / "reference.json")
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
            stats = run.stats(f"{it}/{folder.name}")
            for key in (*SIGNAL_KEYS, *COST_KEYS):
                value = stats.get(key, 0)
                cost[key] += value if isinstance(value, int) else 0
            for key in ("discriminator_accuracy", "signal_unit"):
                if key in stats:
                    cost[key] = stats[key]
    return cost


def _branches(
    paths: list[ExpertPath], branches: list[Any], firsts: list[Any]
) -> dict[tuple[int, int, str], Branch]:
    """The states to score: after the expert's action and after the agent's, per step."""
    todo: dict[tuple[int, int, str], Branch] = {}
    for branch, first in zip(branches, firsts, strict=True):
        index, t = branch.meta["expert"], branch.meta["step"]
        expert = paths[index].trajectory
        last = len(expert.steps) - 1
        todo[(index, t, "expert")] = Branch(
            snapshot=paths[index].snapshots[t + 1],
            messages=expert.turns[: expert.steps[t].turn + 2],
            steps_taken=t + 1,
            step=t,
            action=expert.steps[t].action,
            ended=t == last,
            reward=expert.reward,
        )
        if not branch.steps or first is None:
            continue  # the agent never acted (a generation failure): no estimate, no pair
        todo[(index, t, "agent")] = Branch.after_step(branch, 0, first, t + 1)
    return todo
