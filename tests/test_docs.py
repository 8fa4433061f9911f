"""The docs cannot fall behind the CLI: every command and subcommand of ``litequeue`` has
help text, is named in the README as ``litequeue <command path>``, and every ``litequeue``
command shown in a README's code blocks names a command that exists."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from litequeue.cli import main
from tests.conftest import ROOT

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
# `litequeue` where a shell command starts: line start, after a prompt, or after ; && || | ( $(
COMMAND = re.compile(r"(?:^|[;&|(]\s*|^\$\s+|\$\(\s*)litequeue\s+([^;&|)\n]*)", re.M)


def walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    if path:
        yield path, command
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from walk(command.commands[name], (*path, name))


COMMANDS = dict(walk(main))


def readmes() -> list[Path]:
    found = [ROOT / "README.md", *sorted(ROOT.glob("*/README.md")), *sorted(ROOT.glob("examples/*/README.md"))]
    return [p for p in found if p.is_file()]


def test_the_cli_has_commands() -> None:
    assert {("run-consumer",), ("jobs", "list"), ("pause",), ("prune",)} <= set(COMMANDS)


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="litequeue")
    assert result.exit_code == 0, result.output
    assert f"Usage: litequeue {' '.join(path)}" in result.output
    command = COMMANDS[path]
    text = (command.help or command.short_help or "").strip()
    assert text, f"`litequeue {' '.join(path)}` has no help text (give the function a docstring)"
    # click re-wraps help text: compare its first words, whitespace normalised.
    assert " ".join(text.split()[:8]) in " ".join(result.output.split())


def test_readme_mentions_every_command() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text() if readme.is_file() else ""
    missing = [" ".join(path) for path in sorted(COMMANDS)
               if not re.search(r"litequeue\s+" + r"\s+".join(map(re.escape, path)) + r"(?![\w-])", text)]
    assert not missing, ("README.md does not mention: "
                         + ", ".join(f"`litequeue {m}`" for m in missing)
                         + ("" if readme.is_file() else " (there is no README.md at the repository root)"))


def _resolve(words: list[str]) -> str | None:
    """None if ``litequeue WORDS`` names an existing command, else what is wrong."""
    ctx = click.Context(main)
    group: click.Command = main
    i = 0
    # Options of the top-level group (``--db PATH``, ``-v``) may come before the command.
    while i < len(words) and words[i].startswith("-"):
        word = words[i]
        option = next((p for p in main.params if isinstance(p, click.Option) and word.split("=")[0] in p.opts), None)
        if option is None and word not in ("--help", "-h", "--version"):
            return f"unknown option {word}"
        i += 2 if option is not None and not option.is_flag and not option.count and "=" not in word else 1
    if i == len(words):
        return None
    while isinstance(group, click.Group):
        if i == len(words) or words[i].startswith("-"):
            return None
        sub = group.get_command(ctx, words[i])
        if sub is None:
            return f"no command {words[i]!r}"
        group, i = sub, i + 1
    return None


def test_readme_commands_exist() -> None:
    problems = []
    for readme in readmes():
        for block in FENCE.findall(readme.read_text()):
            for match in COMMAND.finditer(block):
                try:
                    words = shlex.split(match.group(1), comments=True)
                except ValueError:
                    words = match.group(1).split()
                why = _resolve(words)
                if why:
                    problems.append(f"{readme.relative_to(ROOT)}: `litequeue {match.group(1).strip()}`: {why}")
    assert not problems, "README commands that do not exist:\n" + "\n".join(problems)


def test_resolve_catches_unknown_commands() -> None:
    assert _resolve(["jobs", "list", "--status", "failed"]) is None
    assert _resolve(["--db", "x.db", "status"]) is None
    assert _resolve(["-v", "run-consumer", "tasks"]) is None
    assert _resolve(["jobs", "frobnicate"]) == "no command 'frobnicate'"
    assert _resolve(["deploy"]) == "no command 'deploy'"
