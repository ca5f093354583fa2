"""The main job plays what exists with its experts and prints a table."""

from ipr_train.cli import main


def test_quickstart_prints_a_row_per_environment(capsys):
    assert main(["quickstart", "--episodes", "3"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| env | split | episodes | avg reward | success |")
    toy = next(line for line in table if line.startswith("| toy"))
    # opening the chest pays 1.0 in every layout, so a solving expert averages 1.0
    assert "| 3 | 1.000 | 100.0% |" in toy
    for env_id in ("ipr/WebShop-v0", "ipr/InterCodeSQL-v0", "ipr/ALFWorld-v0"):
        assert any(line.startswith(f"| {env_id} |") for line in table)
