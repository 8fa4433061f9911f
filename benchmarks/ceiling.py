"""The raw-SQLite ceiling: the fastest Python's ``sqlite3`` does on this disk with WAL and
``synchronous=FULL`` — what no SQLite-backed queue written in Python can beat."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS q (id INTEGER PRIMARY KEY, data BLOB, claimed INTEGER)")
    conn.execute("CREATE INDEX IF NOT EXISTS q_free ON q (id) WHERE claimed IS NULL")
    return conn


def measure(folder: Path, commits: int = 2000, pairs: int = 1000, batched: int = 100_000) -> dict[str, float]:
    """Single-row commits/s, claim+ack pairs/s (two commits each) and batched rows/s."""
    conn = _connect(folder / "ceiling.db")
    payload = b"x" * 200
    t0 = time.perf_counter()
    for _ in range(commits):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO q (data) VALUES (?)", (payload,))
        conn.execute("COMMIT")
    single = commits / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    for _ in range(pairs):
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute("UPDATE q SET claimed = 1 WHERE id = (SELECT id FROM q WHERE claimed IS NULL "
                           "ORDER BY id LIMIT 1) RETURNING id").fetchone()
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM q WHERE id = ?", (row[0],))
        conn.execute("COMMIT")
    pair = pairs / (time.perf_counter() - t0)

    rows = [(payload,)] * batched
    t0 = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO q (data) VALUES (?)", rows)
    conn.execute("COMMIT")
    batch = batched / (time.perf_counter() - t0)
    conn.close()
    return {"single_commits_per_s": single, "claim_ack_pairs_per_s": pair, "batched_rows_per_s": batch}
