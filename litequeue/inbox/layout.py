"""What an inbox is: its folder, its rules, its own subfolders, and which names it ignores.

A watcher saves its layout in the database (``lq_meta``, key ``inbox:<absolute path>``) before
it takes a file, so consumers (which settle files) and ``litequeue status`` (which counts
them) know the folder names without the watcher's command line.

A taken file lives in its own folder under the processing folder, named after the job it
became: ``INBOX/.processing/lq-<job id>/<path relative to the inbox>``. That folder (the
file's *token*) is unique, so two files of the same name never meet there, a retried job
finds its file at the path its payload names, and a watcher restarted after a crash knows
each file's original relative path and job id from its location alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litequeue.base.errors import ConfigurationError

TOKEN_PREFIX = "lq-"
#: Partial-download and editor names: never taken, whatever the rules say.
IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload")
META_PREFIX = "inbox:"
#: In the processing folder: held (flock) by the inbox's one watcher, holds its pid.
LOCK_NAME = ".watcher.lock"


def is_ignored_name(name: str) -> bool:
    """Dotfiles, ``~*`` and partial-download names (``*.part``, ``*.tmp``, ``*.crdownload``)."""
    return name.startswith((".", "~")) or name.lower().endswith(IGNORED_SUFFIXES)


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """A glob over ``/``-separated relative paths: ``*`` and ``?`` stay within one folder,
    ``**`` crosses folders, ``[...]`` is a character class. A pattern without ``/`` matches
    a file's name in any folder (like ``.gitignore``)."""
    if "/" not in pattern:
        pattern = "**/" + pattern
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1:end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True)
class Rule:
    """``GLOB=task``: files matching GLOB become jobs of the task."""

    glob: str
    task: str
    regex: re.Pattern[str] = field(compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> Rule:
        glob, sep, task = text.rpartition("=")
        glob, task = glob.strip(), task.strip()
        if not sep or not glob or not task:
            raise ConfigurationError(f"rule {text!r} must look like GLOB=TASK, e.g. '*.pdf=ocr_document'")
        return cls(glob, task, glob_to_regex(glob))

    def matches(self, rel: str) -> bool:
        return self.regex.match(rel) is not None


@dataclass(frozen=True)
class Layout:
    """One inbox: its absolute folder, rules (first match wins) and subfolder names."""

    root: Path
    rules: tuple[Rule, ...] = ()
    processing: str = ".processing"
    done: str = "done"
    failed: str = "failed"
    duplicates: str = "duplicates"
    recursive: bool = False
    dedupe: bool = False

    def __post_init__(self) -> None:
        names = {"--processing-dir": self.processing, "--done-dir": self.done,
                 "--failed-dir": self.failed, "--duplicates-dir": self.duplicates}
        for option, name in names.items():
            if not name or "/" in name or name in (".", ".."):
                raise ConfigurationError(f"{option} must be a plain folder name inside the inbox, not {name!r}")
        if len(set(names.values())) != len(names):
            raise ConfigurationError("--processing-dir, --done-dir, --failed-dir and --duplicates-dir "
                                     "must all be different folder names")

    @property
    def key(self) -> str:
        return META_PREFIX + str(self.root)

    @property
    def reserved(self) -> frozenset[str]:
        """Top-level folders the watcher owns and never descends into."""
        return frozenset({self.processing, self.done, self.failed, self.duplicates})

    def folder(self, name: str) -> Path:
        return self.root / name

    def rule_for(self, rel: str) -> Rule | None:
        for rule in self.rules:
            if rule.matches(rel):
                return rule
        return None

    def work_path(self, token: str, rel: str) -> Path:
        """Where a taken file lives while its job runs."""
        return self.root / self.processing / token / rel

    def to_json(self) -> str:
        return json.dumps({
            "root": str(self.root), "rules": [[r.glob, r.task] for r in self.rules],
            "processing": self.processing, "done": self.done, "failed": self.failed,
            "duplicates": self.duplicates, "recursive": self.recursive, "dedupe": self.dedupe,
        })

    @classmethod
    def from_json(cls, text: str) -> Layout:
        data: dict[str, Any] = json.loads(text)
        rules = tuple(Rule(g, t, glob_to_regex(g)) for g, t in data.get("rules", []))
        return cls(Path(data["root"]), rules, data["processing"], data["done"], data["failed"],
                   data.get("duplicates", "duplicates"), bool(data.get("recursive")),
                   bool(data.get("dedupe")))


def token_for(job_id: str) -> str:
    return TOKEN_PREFIX + job_id


def job_id_of(token: str) -> str:
    return token[len(TOKEN_PREFIX):]


def save_layout(store: Any, layout: Layout) -> None:
    """Record the layout for consumers and ``status`` (committed before any file is taken)."""
    with store.write():
        store.sql("INSERT INTO lq_meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                  "DO UPDATE SET value = excluded.value", (layout.key, layout.to_json()))


def load_layout(db_or_store: Any, root: str) -> Layout | None:
    row = _sql(db_or_store, "SELECT value FROM lq_meta WHERE key = ?", (META_PREFIX + root,)).fetchone()
    return None if row is None else Layout.from_json(row[0])


def all_layouts(db_or_store: Any) -> list[Layout]:
    rows = _sql(db_or_store, "SELECT value FROM lq_meta WHERE key LIKE ? ORDER BY key",
                (META_PREFIX + "%",)).fetchall()
    return [Layout.from_json(r[0]) for r in rows]


def _sql(db_or_store: Any, query: str, params: Sequence[Any]) -> Any:
    if hasattr(db_or_store, "sql"):
        return db_or_store.sql(query, params)
    from litequeue.store.dialect import sql

    return sql(db_or_store, query, params)
