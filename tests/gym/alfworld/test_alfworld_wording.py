"""The ETO wording made from an official game file equals ETO's own file."""

import json
import os
from pathlib import Path

from ipr_gym.alfworld.games import to_eto_wording


def test_eto_wording_transform_reproduces_etos_game_files():
    root = Path(os.environ["IPR_GYM_DATA"]) / "alfworld"
    eto_files = sorted((root / "eto" / "json_2.1.1").glob("*/*/*/game.tw-pddl"))
    assert len(eto_files) == 274
    differing = []
    for eto_file in eto_files:
        official = root / "json_2.1.1" / eto_file.relative_to(root / "eto" / "json_2.1.1")
        made = to_eto_wording(json.loads(official.read_text()))
        real = json.loads(eto_file.read_text())
        assert made["grammar"] == real["grammar"]
        assert made["pddl_problem"] == real["pddl_problem"]
        if made["pddl_domain"] != real["pddl_domain"]:
            differing.append(eto_file.parent.parent.name)
    # one ETO file carries an older domain (CleanObject without SinkType)
    assert differing == ["pick_clean_then_place_in_recep-Mug-None-CoffeeMachine-26"]
