"""Pages written per commit on SQLite: WAL frames of a single enqueue, a claim, an ack and
an ack-and-claim round, against bare ``SqliteHuey``'s enqueue (a diagnostic, not a benchmark).

    python benchmarks/commit_pages.py [--ledger 20000] [--samples 200] [--round 8] [--by-btree] [--json]

Every page a commit changes is appended to the WAL once, as a frame of ``24 + page_size``
bytes; with checkpoints off on the writing connection, the WAL only grows, so a commit's
frames are its growth divided by the frame size. Each figure is the median over
``--samples`` commits, on a database that already holds ``--ledger`` finished jobs (the
indexes have depth, as on a database in use) and ``--samples`` queued ones. Default
durability (``full``), one process, no consumer: the commits are the consumer's own
(``LiteStorage.claim``, ``ack`` and ``ack_and_claim``, as the dispatcher calls them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HOLDER = "pages-bench:1"


class Wal:
    """Frames appended to ``path``-wal by the commits :meth:`frames` runs."""

    def __init__(self, path: Path, page_size: int) -> None:
        self.path = Path(str(path) + "-wal")
        self.frame = 24 + page_size
        #: page numbers of the frames each measured commit appended
        self.pages: list[list[int]] = []

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def frames(self, fn: Callable[[], Any]) -> tuple[int, Any]:
        before = self.size()
        out = fn()
        after = self.size()
        if after < before:
            raise RuntimeError("the WAL was reset by a checkpoint: the measurement is void")
        start = max(before, 32)  # a WAL's first frame follows its 32-byte header
        pages = []
        with open(self.path, "rb") as wal:
            for offset in range(start, after, self.frame):
                wal.seek(offset)
                pages.append(int.from_bytes(wal.read(4), "big"))
        self.pages.append(pages)
        return len(pages), out

    def by_btree(self, db: Any, first: int) -> dict[str, float]:
        """Frames per commit by table or index (``dbstat``), over the commits since ``first``."""
        owner = dict(db.execute_sql("SELECT pageno, name FROM dbstat").fetchall())
        commits = self.pages[first:]
        tally: dict[str, int] = {}
        for pages in commits:
            for page in pages:
                name = owner.get(page, "(freelist or header)" if page == 1 else "(other)")
                tally[name] = tally.get(name, 0) + 1
        return {k: round(v / max(1, len(commits)), 2) for k, v in sorted(tally.items(), key=lambda kv: -kv[1])}


def litequeue_pages(tmp: Path, ledger: int, samples: int,
                    round_size: int) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    from litequeue import LiteQueue
    from litequeue.base.states import AttemptOutcome, JobStatus
    from litequeue.base.values import Finished

    path = tmp / "litequeue.db"
    app = LiteQueue("pages", db=str(path))

    @app.task()
    def noop() -> None:
        return None

    storage = app.storage
    db = storage.database
    db.execute_sql("PRAGMA wal_autocheckpoint=0")  # this connection never checkpoints
    page_size = db.execute_sql("PRAGMA page_size").fetchone()[0]
    wal = Wal(path, page_size)

    def finished(claims: list[Any]) -> list[Finished]:
        now = time.time()
        return [Finished(c, "noop", JobStatus.SUCCEEDED, AttemptOutcome.SUCCEEDED, now, now) for c in claims]

    # A ledger in use: `ledger` jobs finished, acked in rounds as a consumer does.
    noop.map([()] * ledger)
    while claims := storage.claim(HOLDER, None, 500):
        storage.ack(HOLDER, finished(claims))
    db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    out: dict[str, list[int]] = {"enqueue": [], "claim": [], "ack": [], "round": []}
    where: dict[str, dict[str, float]] = {}
    for _ in range(samples):
        out["enqueue"].append(wal.frames(lambda: noop())[0])
    where["enqueue"] = wal.by_btree(db, 0)
    held: list[Any] = []
    for _ in range(samples):
        n, claims = wal.frames(lambda: storage.claim(HOLDER, None, 1))
        out["claim"].append(n)
        held.extend(claims)
    where["claim"] = wal.by_btree(db, samples)
    for claim in held:
        out["ack"].append(wal.frames(lambda c=claim: storage.ack(HOLDER, finished([c])))[0])
    where["ack"] = wal.by_btree(db, 2 * samples)
    # Rounds: acks of `round_size` jobs and claims of as many, in one transaction.
    noop.map([()] * (samples * round_size))
    held = storage.claim(HOLDER, None, round_size)
    for _ in range(samples - 1):
        n, (_, claims) = wal.frames(lambda h=held: storage.ack_and_claim(HOLDER, finished(h), None, round_size))
        out["round"].append(n)
        held = claims or []
    where["round"] = wal.by_btree(db, 3 * samples)
    storage.ack(HOLDER, finished(held))
    db.close()
    return {k: statistics.median(v) for k, v in out.items()}, where


def huey_pages(tmp: Path, samples: int) -> dict[str, float]:
    from huey import SqliteHuey

    path = tmp / "huey.db"
    huey = SqliteHuey("pages", filename=str(path))

    @huey.task()
    def noop() -> None:
        return None

    conn = huey.storage.conn
    conn.execute("PRAGMA wal_autocheckpoint=0")
    wal = Wal(path, conn.execute("PRAGMA page_size").fetchone()[0])
    noop()
    counts = [wal.frames(lambda: noop())[0] for _ in range(samples)]
    return {"enqueue": statistics.median(counts)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ledger", type=int, default=20_000, help="finished jobs in the ledger first")
    ap.add_argument("--samples", type=int, default=200, help="commits measured of each kind")
    ap.add_argument("--round", type=int, default=8, help="jobs acked and claimed per round")
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument("--by-btree", action="store_true", help="also the frames per table and index (dbstat)")
    args = ap.parse_args()
    os.environ.pop("LITEQUEUE_DURABILITY", None)  # the default durability
    with tempfile.TemporaryDirectory(prefix="lq-pages-") as tmp:
        lq, where = litequeue_pages(Path(tmp), args.ledger, args.samples, args.round)
        huey = huey_pages(Path(tmp), args.samples)
    figures = {"litequeue_enqueue": lq["enqueue"], "litequeue_claim": lq["claim"], "litequeue_ack": lq["ack"],
               f"litequeue_round_{args.round}": lq["round"], "huey_enqueue": huey["enqueue"]}
    if args.json:
        print(json.dumps({**figures, "by_btree": where}))
        return 0
    print(f"WAL frames (pages) per commit, median of {args.samples}, ledger of {args.ledger:,} finished jobs:")
    print(f"  single enqueue          litequeue {lq['enqueue']:5g}   bare SqliteHuey {huey['enqueue']:g}")
    print(f"  claim of 1 job          litequeue {lq['claim']:5g}")
    print(f"  ack of 1 job            litequeue {lq['ack']:5g}")
    print(f"  round: {args.round} acks + {args.round} claims litequeue {lq['round']:5g}")
    if args.by_btree:
        for kind, tally in where.items():
            print(f"  {kind} (mean frames per commit by table or index): "
                  + ", ".join(f"{name} {n:g}" for name, n in tally.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
