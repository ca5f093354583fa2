"""``ipr/WebShop-v0``: shop for the product an instruction describes.

``catalog`` picks the products: ``"embedded"`` (default; synthetic, built in, see
``synthetic``), ``"fixture"`` (the 7 real products of ``items_shuffle_1000.first7.json``),
``"small"`` / ``"full"`` (WebShop's 1,000-product and 1.18M-product files, when installed in
the data directory) or a path to a products file in WebShop's format (``attributes=`` and
``human_instructions=`` name its companions). A catalog read from files is stored once
per catalog into the data directory and memory-mapped by every process after (see
``store_files``); the embedded one is held in memory. ``goals`` is ``"human"``
(instructions written by people, ``items_human_ins.json``) or ``"synthetic"`` (WebShop's
templated instructions, one per option combination); by default human where the catalog
has them.

Splits: for human goals IPR's lists (``test``: 200 goals, ``test_500``: ETO's 500, ``train``)
and ``all``; for synthetic goals ``test`` (every fifth goal), ``train`` (the rest), ``all``.
Tasks are goal indices in WebShop's session order.

Observations are WebShop's text observations, ``info["valid_actions"]`` the page's
clickables as ``click[...]`` actions (the search bar takes any ``search[...]``), the reward
WebShop's on "Buy Now" (0 before). ``progress=True`` adds ``info["progress"]``, IPR's page
score (appendix B), to every step; it is off by default because it tags the title of every
listed product with spaCy (10-15 ms a title not seen before), ten times the cost of the
rest of a step on a large catalog; ``page_score()`` computes it for the current page on
demand. Without it a step runs spaCy only for the purchase's reward. ``price_seed``
fixes product prices and goal price bounds, which WebShop draws unseeded. ``search`` is
``"bm25"`` (default: Lucene's ranking computed in numpy, see ``search``) or ``"lucene"``
(Anserini itself, through Java; see ``lucene``).
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ipr_gym.core import TaskId, TextEnv, Transition
from ipr_gym.data import dataset_dir
from ipr_gym.data.datasets import WEBSHOP_CATALOGS
from ipr_gym.webshop.catalog import build_product, iter_products
from ipr_gym.webshop.engine import Shop, valid_actions
from ipr_gym.webshop.goals import Goal, make_goals
from ipr_gym.webshop.oracle import first_result_turns, instruction_key, oracle_turns
from ipr_gym.webshop.pages import observation
from ipr_gym.webshop.reward import GoalScorer, check_dependencies
from ipr_gym.webshop.search import BM25Search, Searcher
from ipr_gym.webshop.state import ShopState
from ipr_gym.webshop.store import CatalogStore, in_memory
from ipr_gym.webshop.store_files import open_store
from ipr_gym.webshop.synthetic import embedded_records

SEARCH_BACKENDS = ("bm25", "lucene")
NAMED_CATALOGS = WEBSHOP_CATALOGS
SPLIT_FILES = {"test": "ipr/test_indices.json", "test_500": "ipr/test_indices_500.json",
               "train": "ipr/train_indices.json"}  # fmt: skip
_WORLDS: OrderedDict[tuple[Any, ...], World] = OrderedDict()
_WORLDS_LOCK = threading.Lock()


@functools.lru_cache(maxsize=4)
def human_queries(data_dir: str | None) -> dict[str, tuple[str, ...]]:
    """WebShop's human search queries by instruction (``goal_query_map.json``), keyed as
    goals state them (the price clause WebShop appends included or not)."""
    import json

    path = dataset_dir("webshop", data_dir) / "goal_query_map.json"
    if not path.is_file():
        return {}
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {instruction_key(k): tuple(v) for k, v in raw.items()}


class World:
    """A catalog with its search index, prices and goals: shared by every env of a process
    that asks for the same catalog, goals and seed."""

    def __init__(
        self, catalog: CatalogStore, goal_kind: str, seed: int, show_attrs: bool, search: str
    ):
        self.catalog = catalog
        self.goals, prices = make_goals(catalog, goal_kind, seed)
        self.goal_kind = goal_kind
        index: Searcher
        if search == "bm25":
            index = BM25Search(catalog.asins, catalog.postings, catalog.id_rank)
        else:
            from ipr_gym.webshop.lucene import LuceneSearch

            asins = [catalog.asin(i) for i in range(len(catalog))]
            index = LuceneSearch(asins, [p.search_document() for p in catalog.products])
        self.shop = Shop(catalog, index, prices, show_attrs)


def _catalog(name: str | Path, data_dir: str | None, attributes: Any, human: Any) -> CatalogStore:
    """The catalog's store: in memory for the embedded one, else built once per catalog
    file into the data directory and memory-mapped (see ``store_files``)."""
    if name == "embedded":
        products, attrs = embedded_records()
        return in_memory((build_product(r, attrs) for r in products), name="embedded")
    if isinstance(name, str) and name in NAMED_CATALOGS:
        folder = dataset_dir("webshop", data_dir)
        prod_file, attr_file, human_file = NAMED_CATALOGS[name]
        if not (folder / prod_file).is_file():
            raise FileNotFoundError(
                f"WebShop catalog {name!r} needs {folder / prod_file}; it is not on this "
                "machine (see `ipr-gym data download webshop`), or use catalog='embedded'"
            )
        human_path = folder / human_file if human_file and (folder / human_file).is_file() else None
        return _stored(folder / prod_file, folder / attr_file, human_path, data_dir)
    path = Path(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"unknown WebShop catalog {name!r}: use 'embedded', 'fixture', 'small', 'full' "
            "or the path of a products file in WebShop's format"
        )
    return _stored(path, attributes, human, data_dir)


def _stored(products: Path, attributes: Any, human: Any, data_dir: str | None) -> CatalogStore:
    sources = [Path(p) for p in (products, attributes, human) if p is not None]
    return open_store(
        sources, lambda: iter_products(products, attributes, human), data_dir, products.name
    )


def _world(catalog: Any, goals: str | None, seed: int, show_attrs: bool, search: str,
           data_dir: Any, attributes: Any, human: Any) -> World:  # fmt: skip
    key = (str(catalog), goals, seed, show_attrs, search, str(data_dir), str(attributes),
           str(human))  # fmt: skip
    with _WORLDS_LOCK:
        world = _WORLDS.get(key)
        if world is None:
            built = _catalog(catalog, data_dir, attributes, human)
            kind = goals or ("human" if len(built.human_docs) else "synthetic")
            world = World(built, kind, seed, show_attrs, search)
            _WORLDS[key] = world
            if len(_WORLDS) > 2:
                _WORLDS.popitem(last=False)
        _WORLDS.move_to_end(key)
        return world


class WebShopEnv(TextEnv):
    def __init__(
        self,
        split: str = "test",
        catalog: str | Path = "embedded",
        goals: str | None = None,
        price_seed: int = 0,
        search: str = "bm25",
        show_attrs: bool = False,
        attributes: str | Path | None = None,
        human_instructions: str | Path | None = None,
        max_episode_steps: int | None = None,
        data_dir: str | None = None,
        render_mode: str | None = None,
        progress: bool = False,
    ):
        super().__init__(split=split, max_episode_steps=max_episode_steps, render_mode=render_mode)
        if goals not in (None, "human", "synthetic"):
            raise ValueError(f"goals must be 'human' or 'synthetic', got {goals!r}")
        search = {"bm25s": "bm25"}.get(search, search)  # its name while bm25s computed it
        if search not in SEARCH_BACKENDS:
            raise ValueError(f"search must be one of {list(SEARCH_BACKENDS)}, got {search!r}")
        check_dependencies()
        self.catalog_name = str(catalog)
        self.price_seed = price_seed
        self.show_attrs = show_attrs
        self.search_backend = search
        self.progress = progress
        self._world = _world(catalog, goals, price_seed, show_attrs, search, data_dir,
                             attributes, human_instructions)  # fmt: skip
        self.goal_kind = self._world.goal_kind
        self._tasks = self._split(split, data_dir)
        self._data_dir = data_dir
        self._goal: Goal | None = None
        self._scorer: GoalScorer | None = None
        self._scorers: OrderedDict[int, GoalScorer] = OrderedDict()
        self._state = ShopState()

    def _split(self, split: str, data_dir: str | None) -> list[TaskId]:
        n = len(self._world.goals)
        if split == "all":
            return list(range(n))
        if self.goal_kind == "synthetic":
            if split == "test":
                return list(range(0, n, 5))
            if split == "train":
                return [i for i in range(n) if i % 5]
            raise ValueError(
                f"unknown split {split!r} for synthetic goals; valid: test, train, all"
            )
        if split not in SPLIT_FILES:
            raise ValueError(f"unknown split {split!r}; valid: {[*SPLIT_FILES, 'all']}")
        import json

        indices = json.loads((dataset_dir("webshop", data_dir) / SPLIT_FILES[split]).read_text())
        return [i for i in indices if i < n]

    # ------------------------------------------------------------------ the game
    @property
    def tasks(self) -> Sequence[TaskId]:
        return self._tasks

    @property
    def instruction(self) -> str:
        return "" if self._goal is None else self._goal.instruction

    def goal(self, task: TaskId) -> Goal:
        return self._world.goals[int(task)]

    def _options(self) -> dict[str, Any]:
        return {"catalog": self.catalog_name, "goals": self.goal_kind,
                "price_seed": self.price_seed, "search": self.search_backend,
                "show_attrs": self.show_attrs}  # fmt: skip

    def _use_goal(self, task: TaskId) -> None:
        index = int(task)
        self._goal = self._world.goals[index]
        scorer = self._scorers.pop(index, None) or GoalScorer(self._goal)
        self._scorers[index] = scorer
        if len(self._scorers) > 256:
            self._scorers.popitem(last=False)
        self._scorer = scorer

    def _begin(self, task: TaskId) -> str:
        self._use_goal(task)
        self._state = ShopState()
        return self._render()

    def _render(self) -> str:
        return observation(
            self._state, self.instruction, self._world.catalog.by_asin, self.show_attrs
        )

    def _act(self, action: str) -> Transition:
        assert self._scorer is not None
        outcome = self._world.shop.act(self._state, action, self._scorer)
        self._state = outcome.state
        return Transition(
            self._render(), outcome.reward, outcome.done,
            won=outcome.done and outcome.reward == 1.0, invalid=not outcome.valid,
        )  # fmt: skip

    def _valid_actions(self) -> list[str]:
        return valid_actions(self._state, self._world.catalog.by_asin, self.show_attrs)

    def _progress(self) -> float | None:
        return self.page_score() if self.progress else None

    def page_score(self) -> float:
        """IPR's page score of the current page against the episode's goal (appendix B)."""
        if self._scorer is None:
            raise RuntimeError("page_score() needs an episode: call reset() first")
        return self._world.shop.progress(self._state, self._scorer)

    @property
    def world(self) -> World:
        """The catalog, search index, prices and goals this env plays on (shared)."""
        return self._world

    @property
    def state(self) -> ShopState:
        """The session state (immutable): page, query, results, product, options."""
        return self._state

    def warm_up(self) -> None:
        """spaCy's model, which WebShop's reward (and ``progress``) needs, loads here."""
        from ipr_gym.webshop.reward import warm_up

        warm_up()

    def _save_state(self) -> Any:
        return self._state

    def _load_state(self, task: TaskId, state: Any) -> bool:
        self._use_goal(task)
        self._state = state
        return True

    # ------------------------------------------------------------------ experts
    def expert_turns(self, task: TaskId, shopper: str = "oracle") -> list[tuple[str, str]]:
        """The oracle's (thought, action) turns for ``task``; it searches with WebShop's
        human queries for a human goal (where the data has some) or the instruction's words.
        Raises ``OracleUnreachable`` when no such query lists the goal's product.
        ``shopper="first_result"``: the same query, then the first result (see ``oracle``)."""
        goal = self.goal(task)
        products = self._world.catalog.by_asin
        queries = human_queries(self._data_dir).get(instruction_key(goal.instruction), ()) if (
            self.goal_kind == "human") else ()  # fmt: skip
        search = self._world.shop.search_index
        if shopper == "first_result":
            return first_result_turns(goal, products, search, queries)
        if shopper != "oracle":
            raise ValueError(f"unknown shopper {shopper!r}; known: 'oracle', 'first_result'")
        return oracle_turns(goal, products[goal.asin], search, queries)

    def expert_actions(self, task: TaskId) -> list[str]:
        return [action for _, action in self.expert_turns(task)]

    def expert_messages(self, task: TaskId) -> list[dict[str, str]]:
        """The oracle's episode as chat turns in the layout of IPR's WebShop example
        (``Observation:\n...`` user turns, ``Thought: ...\nAction: ...`` assistant turns,
        ending with the purchase). Leaves this env's own episode alone."""
        goal = self.goal(task)
        scorer, state = GoalScorer(goal), ShopState()
        products, shop = self._world.catalog.by_asin, self._world.shop

        def seen(state: ShopState) -> dict[str, str]:
            text = observation(state, goal.instruction, products, self.show_attrs)
            return {"role": "user", "content": f"Observation:\n{text}"}

        messages = [seen(state)]
        for thought, action in self.expert_turns(task):
            messages.append(
                {"role": "assistant", "content": f"Thought: {thought}\nAction: {action}"}
            )
            outcome = shop.act(state, action, scorer)
            state = outcome.state
            if outcome.done:
                break
            messages.append(seen(state))
        return messages
