"""bench-webshop_scale: WebShop at the size of its real catalog, ours against the original.

Catalogs in WebShop's file layout come from ``ipr_gym.webshop.generate`` (seeded) at
100,000 and 1,181,436 products. For ours, each in a fresh process: the first build of the
catalog's store, a later open (``gym.make``), the process's RSS after 200 episodes, the PSS
of env-pool workers (1 and 4) on one catalog, and the CPU time of each kind of step, cold
(query and product new to the process) and warm (the same episode again): search, click a
product, click an option, buy. The original side, on the 100,000-product file: WebShop's
own loading (``json.load`` of the whole products file, one object per product, as its
``load_products`` keeps them), its pyserini index (Anserini's ``IndexCollection``, the
command WebShop's ``run_indexing.sh`` runs) and its per-step work (Lucene's search through
the Java child, then the page round trip ``bench-webshop`` measures: template compiled and
rendered, old and new page parsed by BeautifulSoup). Each step kind's ratio is the
original's median over ours.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import platformdirs

from benchmarks.results_io import write_results

SIZES = (100_000, 1_181_436)
KINDS = ("search", "click_product", "click_option", "buy")


def rss_mib(pid: int | str = "self", field: str = "VmRSS") -> float:
    """Resident memory; ``RssAnon`` is the private part (mapped files excluded)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def catalog_kwargs(folder: Path, data: Path) -> dict[str, Any]:
    return {"catalog": str(folder / "items_shuffle.json"),
            "attributes": str(folder / "items_ins_v2.json"),
            "human_instructions": str(folder / "items_human_ins.json"),
            "data_dir": str(data), "split": "all"}  # fmt: skip


def episodes_plan(env: Any, count: int, seed: int) -> list[tuple[Any, str]]:
    """(task, query) pairs: a goal and three words of its product's title, so the search
    lists it and is new to the process."""
    shop = env.unwrapped
    rng = random.Random(seed)
    plan = []
    for task in rng.sample(list(shop.tasks), k=min(count, len(shop.tasks))):
        words = shop.goal(task).name.lower().replace(",", " ").split()
        plan.append((task, " ".join(rng.sample(words, k=min(3, len(words))))))
    return plan


def play(env: Any, task: Any, query: str, timings: dict[str, list[float]], html: Any = None):
    """One episode: search, the goal's product (else the first result), an option, buy."""
    shop = env.unwrapped
    env.reset(options={"task": task})
    target = shop.goal(task).asin
    before = html(None) if html else None

    def step(kind: str, action: str) -> Any:
        """One step's CPU time (plus the reference's page work) under ``kind``."""
        nonlocal before
        start = time.process_time()
        out = env.step(action)
        cost = time.process_time() - start
        if html is not None:
            extra, before = html(before)
            cost += extra
        timings[kind].append(cost)
        return out

    _, _, _, _, info = step("search", f"search[{query}]")
    listed = shop.state.listed
    asin = target if target in listed else (listed[0] if listed else None)
    if asin is None:
        return
    _, _, _, _, info = step("click_product", f"click[{asin.lower()}]")
    options = [a for a in info["valid_actions"] if a.startswith("click[") and
               a[6:-1] not in ("Back to Search", "< Prev", "Buy Now", "Description",
                               "Features", "Reviews")]  # fmt: skip
    if options:
        step("click_option", options[0])
    step("buy", "click[Buy Now]")


def child_ours(folder: Path, data: Path, episodes: int) -> dict[str, Any]:
    """In a fresh process: open the catalog (built or not), play, measure."""
    import gymnasium as gym

    import ipr_gym  # noqa: F401
    from ipr_gym.webshop.reward import warm_up

    warm_up()
    base_rss, base_anon = rss_mib(), rss_mib(field="RssAnon")
    start = time.perf_counter()
    env = gym.make("ipr/WebShop-v0", **catalog_kwargs(folder, data), max_episode_steps=None)
    opened = time.perf_counter() - start
    open_rss, open_anon = rss_mib(), rss_mib(field="RssAnon")
    plan = episodes_plan(env, episodes, seed=0)
    cold: dict[str, list[float]] = {k: [] for k in KINDS}
    warm: dict[str, list[float]] = {k: [] for k in KINDS}
    for task, query in plan:
        play(env, task, query, cold)
    for task, query in plan:
        play(env, task, query, warm)
    return {"open_s": opened, "rss_before_mib": base_rss, "rss_open_mib": open_rss,
            "rss_after_mib": rss_mib(), "peak_rss_mib": peak_rss_mib(),
            "anon_open_mib": open_anon - base_anon,
            "anon_after_mib": rss_mib(field="RssAnon") - base_anon,
            "cold": cold, "warm": warm, "goals": len(env.unwrapped.world.goals)}  # fmt: skip


def child_build(folder: Path, data: Path) -> dict[str, Any]:
    from ipr_gym.webshop.catalog import iter_products
    from ipr_gym.webshop.store_files import open_store

    kw = catalog_kwargs(folder, data)
    files = [Path(kw["catalog"]), Path(kw["attributes"]), Path(kw["human_instructions"])]
    start = time.perf_counter()
    open_store(files, lambda: iter_products(*files), data)
    size = sum(f.stat().st_size for f in next((data / "index" / "webshop").glob("*/")).iterdir())
    return {"build_s": time.perf_counter() - start, "peak_rss_mib": peak_rss_mib(),
            "store_mib": size / 2**20}  # fmt: skip


def java_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_reference(folder: Path, data: Path, episodes: int) -> dict[str, Any]:
    """WebShop's way on the same file: everything in memory, Lucene, the page round trip."""
    import gymnasium as gym

    import ipr_gym  # noqa: F401
    from benchmarks.webshop import roundtrip
    from ipr_gym.webshop.catalog import build_product
    from ipr_gym.webshop.html import render_html
    from ipr_gym.webshop.lucene import LuceneSearch, anserini
    from ipr_gym.webshop.reward import warm_up

    os.environ["IPR_GYM_DATA"] = str(data / "lucene")  # a fresh Lucene index, not a cached one
    warm_up()
    base, base_anon = rss_mib(), rss_mib(field="RssAnon")
    start = time.perf_counter()
    with open(folder / "items_shuffle.json") as f:
        raw = json.load(f)
    with open(folder / "items_ins_v2.json") as f:
        attributes = json.load(f)
    with open(folder / "items_human_ins.json") as f:
        human = json.load(f)
    products = [build_product(r, attributes, human) for r in raw]
    del raw, attributes
    load_s = time.perf_counter() - start
    loaded_rss, loaded_peak = rss_mib(), peak_rss_mib()
    loaded_anon = rss_mib(field="RssAnon") - base_anon
    start = time.perf_counter()
    LuceneSearch([p.asin for p in products], [p.search_document() for p in products])
    index_s = time.perf_counter() - start
    del products
    # the episodes: our engine with Lucene's ranking (the index just built, found by its
    # content) and WebShop's page work added to every step
    env = gym.make("ipr/WebShop-v0", **catalog_kwargs(folder, data), search="lucene",
                   max_episode_steps=None)  # fmt: skip
    shop = env.unwrapped

    def page_work(before: Any) -> Any:
        if before is None:
            return render_html(shop.state, shop.instruction, shop.world.catalog.by_asin, "/s/x")
        return roundtrip(shop.state, before, shop)

    timings: dict[str, list[float]] = {k: [] for k in KINDS}
    java = anserini()._proc
    assert java is not None
    java_before = java_cpu_s(java.pid)
    for task, query in episodes_plan(env, episodes, seed=0):
        play(env, task, query, timings, html=page_work)
    # Lucene answers in the Java child, whose CPU time process_time does not see; its
    # clock-tick counter is too coarse per search, so its mean per search is added
    per_search = (java_cpu_s(java.pid) - java_before) / max(1, len(timings["search"]))
    timings["search"] = [t + per_search for t in timings["search"]]
    return {"load_s": load_s, "index_s": index_s, "rss_before_mib": base,
            "rss_loaded_mib": loaded_rss, "peak_rss_mib": loaded_peak,
            "private_loaded_mib": loaded_anon,
            "java_search_ms": per_search * 1e3, "steps": timings}  # fmt: skip


def child_pool(folder: Path, data: Path, workers: int) -> dict[str, Any]:
    from ipr_gym.pool import EnvPool

    kw = catalog_kwargs(folder, data)
    with EnvPool("ipr/WebShop-v0", slots=workers, workers=workers, env_kwargs=kw) as pool:
        tasks = pool.tasks()[:workers]
        pool.reset(range(workers), tasks=tasks)
        for query in ("wireless headphones", "ground coffee", "summer dress"):
            pool.step([(s, f"search[{query}]") for s in range(workers)])
        pids = pool.worker_pids
        return {"pss_mib": [pss_mib(p) for p in pids], "rss_mib": [rss_mib(p) for p in pids]}


def run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "benchmarks", "bench-webshop_scale", "--child",
                          *args], capture_output=True, text=True, check=False)  # fmt: skip
    if out.returncode:
        raise RuntimeError(f"child {args} failed:\n{out.stderr[-3000:]}")
    sys.stderr.write(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def med_ms(values: list[float]) -> float:
    return statistics.median(values) * 1e3 if values else float("nan")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench-webshop_scale")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--reference-max", type=int, default=max(SIZES),
                        help="largest catalog the original is run on (at full size it "
                             "holds 7.1 GB)")  # fmt: skip
    parser.add_argument("--work", default=None, help="where generated catalogs are kept")
    parser.add_argument("--child", nargs="+", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        mode, *rest = args.child
        folder = Path(rest[0])
        result = {"build": lambda: child_build(folder, Path(rest[1])),
                  "ours": lambda: child_ours(folder, Path(rest[1]), int(rest[2])),
                  "pool": lambda: child_pool(folder, Path(rest[1]), int(rest[2])),
                  "reference": lambda: child_reference(folder, Path(rest[1]), int(rest[2])),
                  }[mode]()  # fmt: skip
        print(json.dumps(result))
        return 0

    from ipr_gym.webshop.generate import write_catalog

    work = Path(args.work or platformdirs.user_cache_dir("ipr-gym")) / "bench-webshop-scale"
    metrics: dict[str, float] = {}
    ratios: dict[str, float] = {}
    for n in (int(s) for s in args.sizes.split(",")):
        tag = f"{n // 1000}k"
        folder = work / f"catalog_{n}"
        if not (folder / "done.json").is_file():
            print(f"generating {n:,} products in {folder}", file=sys.stderr)
            written = write_catalog(folder, n, seed=0)
            (folder / "done.json").write_text(json.dumps(written))
        written = json.loads((folder / "done.json").read_text())
        metrics[f"{tag}_catalog_mib"] = written["bytes"] / 2**20
        metrics[f"{tag}_generate_s"] = written["seconds"]
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            data = Path(tmp)
            built = run_child("build", str(folder), str(data))
            metrics[f"{tag}_first_build_s"] = built["build_s"]
            metrics[f"{tag}_build_peak_rss_mib"] = built["peak_rss_mib"]
            metrics[f"{tag}_store_mib"] = built["store_mib"]
            ours = run_child("ours", str(folder), str(data), str(args.episodes))
            metrics[f"{tag}_open_s"] = ours["open_s"]
            metrics[f"{tag}_goals"] = ours["goals"]
            metrics[f"{tag}_rss_open_mib"] = ours["rss_open_mib"] - ours["rss_before_mib"]
            metrics[f"{tag}_rss_after_episodes_mib"] = (
                ours["rss_after_mib"] - ours["rss_before_mib"]
            )
            metrics[f"{tag}_private_open_mib"] = ours["anon_open_mib"]
            metrics[f"{tag}_private_after_episodes_mib"] = ours["anon_after_mib"]
            for kind in KINDS:
                metrics[f"{tag}_{kind}_cold_ms"] = med_ms(ours["cold"][kind])
                metrics[f"{tag}_{kind}_warm_ms"] = med_ms(ours["warm"][kind])
            pss = {w: run_child("pool", str(folder), str(data), str(w))["pss_mib"] for w in (1, 4)}
            metrics[f"{tag}_pool1_pss_mib"] = sum(pss[1])
            metrics[f"{tag}_pool4_pss_mib"] = sum(pss[4])
            metrics[f"{tag}_pss_per_extra_worker_mib"] = (sum(pss[4]) - sum(pss[1])) / 3
            ref = None
            if n <= args.reference_max:
                try:
                    ref = run_child("reference", str(folder), str(data), str(args.episodes))
                except RuntimeError as failed:  # out of memory at full size, say
                    print(f"the original could not run on {n:,} products: {failed}")
                    metrics[f"{tag}_reference_failed"] = 1.0
            if ref is not None:
                metrics[f"{tag}_reference_load_s"] = ref["load_s"]
                metrics[f"{tag}_reference_index_s"] = ref["index_s"]
                metrics[f"{tag}_reference_rss_mib"] = ref["rss_loaded_mib"] - ref["rss_before_mib"]
                metrics[f"{tag}_reference_peak_rss_mib"] = ref["peak_rss_mib"]
                metrics[f"{tag}_reference_private_mib"] = ref["private_loaded_mib"]
                metrics[f"{tag}_reference_java_search_ms"] = ref["java_search_ms"]
                for kind in KINDS:
                    metrics[f"{tag}_reference_{kind}_ms"] = med_ms(ref["steps"][kind])
                    ratios[f"{tag}_{kind}_reference_over_ours_cold"] = (
                        med_ms(ref["steps"][kind]) / metrics[f"{tag}_{kind}_cold_ms"]
                    )
                ratios[f"{tag}_reference_4_workers_rss_over_our_pool4_pss"] = (
                    4 * metrics[f"{tag}_reference_rss_mib"] / metrics[f"{tag}_pool4_pss_mib"]
                )
        print(
            tag, {k: round(v, 3) for k, v in metrics.items() if k.startswith(tag)}, file=sys.stderr
        )
    write_results("webshop_scale", metrics, ratios, notes=NOTES)
    return 0


NOTES = (
    "Catalogs are generated in WebShop's file layout (`ipr_gym.webshop.generate`, seed 0). "
    "Ours: `first_build_s` streams the files into the store (once per catalog); `open_s` is "
    "a later `gym.make` in a fresh process (open the mapped store, draw prices, make the "
    "goals); RSS rows are that process's growth over its state before `gym.make` (spaCy "
    "loaded), after opening and after the episodes; PSS is summed over a pool's worker "
    "processes after three searches each (shared mapped pages split between them). Step "
    "rows are medians of CPU time (`time.process_time`) per step over the episodes: search "
    "(three words of the goal product's title), click the product, click its first option, "
    "buy; cold is the first time in the process, warm the same episodes again. The reference "
    "loads the products as WebShop does (all in memory), indexes them with Anserini's "
    "IndexCollection and pays per step WebShop's page work (compile and render the page, "
    "parse the old and new HTML) plus, for searches, the CPU time of Anserini's Java process "
    "per search (its total over the episodes divided by the searches; JIT warm-up included); "
    "its reward is the same computation as ours. Private memory is `RssAnon`: "
    "what a process holds of its own, mapped files excluded."
)
