"""The docs cannot fall behind the CLI: every command and subcommand of ``litequeue`` has
help text, is named in the docs (README.md and docs/*.md) as ``litequeue <command path>``,
and every ``litequeue`` command shown in the code blocks of a README or a docs page names a
command that exists. Every relative link of a README or a docs page leads to a file that
exists, and an ``#anchor`` into a markdown file to one of its headings."""

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


main.load_all()  # every command module, not only those a test ran
COMMANDS = dict(walk(main))


def readmes() -> list[Path]:
    found = [ROOT / "README.md", *sorted(ROOT.glob("*/README.md")), *sorted(ROOT.glob("examples/*/README.md"))]
    return [p for p in found if p.is_file()]


def docs_pages() -> list[Path]:
    """The user documentation: the README and every page under docs/."""
    return [p for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))] if p.is_file()]


def documents() -> list[Path]:
    """Every markdown file a user reads: the docs pages and the other READMEs."""
    return list(dict.fromkeys([*docs_pages(), *readmes()]))


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
    """Every command is named in the docs (the CLI reference is docs/operations.md)."""
    text = "\n".join(page.read_text() for page in docs_pages())
    missing = [" ".join(path) for path in sorted(COMMANDS)
               if not re.search(r"litequeue\s+" + r"\s+".join(map(re.escape, path)) + r"(?![\w-])", text)]
    assert not missing, ("the docs (README.md, docs/*.md) do not mention: "
                         + ", ".join(f"`litequeue {m}`" for m in missing)
                         + ("" if (ROOT / "README.md").is_file() else " (there is no README.md at the root)"))


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
    for readme in documents():
        for block in FENCE.findall(readme.read_text()):
            for match in COMMAND.finditer(block):
                try:
                    words = shlex.split(match.group(1), comments=True)
                except ValueError:
                    words = match.group(1).split()
                why = _resolve(words)
                if why:
                    problems.append(f"{readme.relative_to(ROOT)}: `litequeue {match.group(1).strip()}`: {why}")
    assert not problems, "commands in the docs that do not exist:\n" + "\n".join(problems)


def test_resolve_catches_unknown_commands() -> None:
    assert _resolve(["jobs", "list", "--status", "failed"]) is None
    assert _resolve(["--db", "x.db", "status"]) is None
    assert _resolve(["-v", "run-consumer", "tasks"]) is None
    assert _resolve(["jobs", "frobnicate"]) == "no command 'frobnicate'"
    assert _resolve(["deploy"]) == "no command 'deploy'"


# A markdown link or image: [text](target) or ![alt](target "title").
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.M)
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.S)


def _prose(text: str) -> str:
    """TEXT without its fenced code blocks (their lines kept empty) and inline code spans."""
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return INLINE_CODE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lowercase, punctuation dropped, spaces to dashes."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"(\*+|\b_+|_+\b)", "", text)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor GitHub gives PAGE's headings (a repeated heading gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    found = set()
    text = FENCE.sub("", page.read_text())
    for _, heading in HEADING.findall(text):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for number, line in enumerate(_prose(page.read_text()).splitlines(), 1):
        for target in LINK.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("//"):
                continue  # https:, mailto: ...: not a file of this repository
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(root)}:{number}: ({target})"
            if not dest.exists():
                problems.append(f"{where}: no file {path}")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                problems.append(f"{where}: {dest.relative_to(root)} has no heading #{anchor}")
    return problems


def test_relative_links_resolve() -> None:
    assert (ROOT / "README.md").is_file()
    problems = [problem for page in documents() for problem in broken_links(page)]
    assert not problems, "links in the docs that lead nowhere:\n" + "\n".join(problems)


def test_slugs_are_githubs(tmp_path: Path) -> None:
    assert slug("Several hosts (PostgreSQL)") == "several-hosts-postgresql"
    assert slug("Concurrency limits, breakers and rate limits") == "concurrency-limits-breakers-and-rate-limits"
    assert slug("`status` at scale") == "status-at-scale"
    assert slug("The life of a job, one place each") == "the-life-of-a-job-one-place-each"
    assert slug("Coming from **Huey**") == "coming-from-huey"
    assert slug("run_consumer and -k process") == "run_consumer-and--k-process"
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n## Notes\n\n```sh\n# not a heading\n```\n\n## Notes\n\n"
                    "[ok](#notes-1) [gone](#nowhere) [file](missing.md) `[code](nowhere.md)` [web](https://x.example)\n")
    assert anchors(page) == {"title", "notes", "notes-1"}
    problems = broken_links(page, root=tmp_path)
    assert len(problems) == 2, problems
    assert "has no heading #nowhere" in problems[0] and "no file missing.md" in problems[1]


README_MAX_LINES = 350


def test_readme_is_short() -> None:
    """The README says what litequeue is and leads to docs/; the rest lives there."""
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, (f"README.md has {lines} lines (at most {README_MAX_LINES}): "
                                       "move sections into a docs/ page and link to it")


# What the project's own process leaves in text, never a user's concern.
INTERNAL = re.compile(r"\bissues?\s+#?\d+|(?<![&\w])#\d+\b(?![\w-])|closing note|\b(?:this|the last) round\b", re.I)


def internal_mentions(text: str) -> list[str]:
    """Each line of TEXT's prose (code blocks and spans aside) that mentions an issue number,
    a closing note or a round of work."""
    return [line.strip() for line in _prose(text).splitlines() if INTERNAL.search(line)]


def test_docs_do_not_mention_issues() -> None:
    problems = [f"{page.relative_to(ROOT)}: {line}" for page in documents()
                for line in internal_mentions(page.read_text())]
    assert not problems, "the docs speak to users; these lines mention the project's issues:\n" + "\n".join(problems)


def test_internal_mentions_are_caught() -> None:
    assert internal_mentions("Where issue 15's targets stand")
    assert internal_mentions("the profiles are in the Closing note of issue #7")
    assert internal_mentions("fixed in #42.")
    assert internal_mentions("What changed in this round: ...")
    assert not internal_mentions("each ack-and-claim round of ~8 jobs; see [Issues](#issues-and-fixes)")
    assert not internal_mentions("```text\nissue 15\n```\nand `issue 3` in code")
    assert not internal_mentions("&#8594; [step](#2-create-the-user) [x](page.md#3)")


def _modules() -> list[str]:
    """Every module of the package and the page, less the packages' bare ``__init__`` files."""
    found = []
    for path in sorted([*ROOT.glob("litequeue/**/*.py"), *ROOT.glob("web/**/*.py")]):
        body = path.read_text()
        if path.name == "__init__.py" and body.count("\n") <= 2:
            continue
        found.append(path.relative_to(ROOT).as_posix())
    return found


def test_architecture_lists_every_module_by_layer() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    missing = [m for m in _modules() if f"`{m}`" not in text]
    assert not missing, "docs/architecture.md's layer tables do not list: " + ", ".join(missing)
    from tests.unit.test_layers import LAYERS

    for index, (name, _) in enumerate(LAYERS):
        assert f"### {index}. {name}" in text, f"docs/architecture.md has no heading for layer {index} ({name})"


def test_paths_named_in_the_docs_exist() -> None:
    named = re.compile(r"`((?:litequeue|web|tests|benchmarks|examples)/[\w/.-]*(?:\.\w+|/))`")
    stale = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for path in named.findall(page.read_text()):
            if not (ROOT / path.rstrip("/")).exists():
                stale.append(f"{page.relative_to(ROOT)}: {path}")
    assert not stale, "paths named in the docs that do not exist:\n" + "\n".join(stale)
