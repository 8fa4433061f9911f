"""Rules, ignored names and never-overwriting moves, on real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from litequeue.base.errors import ConfigurationError
from litequeue.inbox.layout import Layout, Rule, is_ignored_name
from litequeue.inbox.moves import free_name, move_noreplace, move_to_free_name


@pytest.mark.parametrize(("glob", "rel", "hit"), [
    ("*.pdf", "scan.pdf", True),
    ("*.pdf", "sub/scan.pdf", True),  # no '/': the name, in any folder
    ("*.pdf", "scan.pdf.txt", False),
    ("invoices/*.csv", "invoices/jan.csv", True),
    ("invoices/*.csv", "invoices/2026/jan.csv", False),  # '*' stays in one folder
    ("invoices/**/*.csv", "invoices/2026/jan.csv", True),
    ("invoices/**/*.csv", "invoices/jan.csv", True),
    ("report-?.[ct]sv", "report-1.csv", True),
    ("report-?.[!ct]sv", "report-1.csv", False),
    ("a+b (1).txt", "a+b (1).txt", True),
])
def test_rule_globs_match_relative_paths(glob: str, rel: str, hit: bool) -> None:
    assert Rule.parse(f"{glob}=task").matches(rel) is hit


def test_first_matching_rule_wins_and_bad_rules_say_the_form() -> None:
    layout = Layout(Path("/x"), (Rule.parse("special/*.pdf=a"), Rule.parse("*.pdf=b")))
    assert layout.rule_for("special/x.pdf").task == "a"  # type: ignore[union-attr]
    assert layout.rule_for("x.pdf").task == "b"  # type: ignore[union-attr]
    assert layout.rule_for("x.doc") is None
    with pytest.raises(ConfigurationError, match="GLOB=TASK"):
        Rule.parse("*.pdf")
    with pytest.raises(ConfigurationError, match="different"):
        Layout(Path("/x"), done="out", failed="out")


@pytest.mark.parametrize("name", [".hidden", "~lock.docx", "a.part", "a.TMP", "a.crdownload"])
def test_partial_and_hidden_names_are_ignored(name: str) -> None:
    assert is_ignored_name(name)
    assert not is_ignored_name("a.pdf")


def test_moves_never_overwrite(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("new")
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "a.txt").write_text("old")
    with pytest.raises(FileExistsError):
        move_noreplace(tmp_path / "a.txt", tmp_path / "done" / "a.txt")
    assert free_name(tmp_path / "done", "a.txt") == "a_2.txt"
    (tmp_path / "done" / "b.txt.error.txt").write_text("report")
    assert free_name(tmp_path / "done", "b.txt", ".error.txt") == "b_2.txt"
    where = move_to_free_name(tmp_path / "a.txt", tmp_path / "done", "a.txt")
    assert where.name == "a_2.txt" and where.read_text() == "new"
    assert (tmp_path / "done" / "a.txt").read_text() == "old"
    with pytest.raises(FileNotFoundError):
        move_noreplace(tmp_path / "a.txt", tmp_path / "x.txt")
