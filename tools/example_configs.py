"""Write ``configs/webshop_<method>.yaml``: every method's complete config (every key, the
defaults included) at the budget of ``ipr-train compare webshop``, seed 0, starting from
that comparison's SFT model. Run it after changing a method's config or the budget:
``python tools/example_configs.py``."""

from __future__ import annotations

from pathlib import Path

import yaml

from ipr_train.compare import ENVS, base_config, method_config
from ipr_train.methods import methods

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    spec = ENVS["webshop"]
    out = Path("runs/compare_webshop")
    base = base_config(spec, spec.full, out)
    sft_model = str(out / "sft" / "sft" / "final")
    for name, (config_class, _) in sorted(methods().items()):
        raw = method_config(base, name, 0, spec.full, sft_model, out)
        raw["output_dir"] = f"runs/{name}"
        cfg = config_class.model_validate(raw)
        head = (f"# {name}: ipr-train run configs/webshop_{name}.yaml  (every key, defaults "
                "included; the\n# budget of `ipr-train compare webshop`, whose SFT model it "
                "starts from)\n")  # fmt: skip
        body = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
        (ROOT / "configs" / f"webshop_{name}.yaml").write_text(head + body)


if __name__ == "__main__":
    main()
