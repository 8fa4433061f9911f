"""/metrics in Prometheus text format."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from pathlib import Path

from flask.testing import FlaskClient

from litequeue.ledger.metrics import HistogramCache, label_value, render
from litequeue.store.database import open_database
from tests.web.conftest import query

# Values in Go's float syntax, as the exposition format takes them (6.7e-05 too).
SAMPLE = re.compile(r'^([a-z_]+)(\{(?:[a-z_]+="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.]+(?:e[+-]?[0-9]+)?|\+Inf)$')
LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> tuple[dict[str, str], list[tuple[str, dict[str, str], float]]]:
    types: dict[str, str] = {}
    samples = []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
        elif line.startswith("# HELP ") or not line:
            continue
        else:
            m = SAMPLE.match(line)
            assert m, f"not a Prometheus sample line: {line!r}"
            samples.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return types, samples


def test_metrics_format_and_values(client: FlaskClient) -> None:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = r.get_data(as_text=True)
    assert text.endswith("\n")
    types, samples = parse(text)
    assert types == {
        "litequeue_jobs_finished_total": "counter", "litequeue_queue_depth": "gauge",
        "litequeue_queue_oldest_age_seconds": "gauge", "litequeue_queue_paused": "gauge",
        "litequeue_job_duration_seconds": "histogram", "litequeue_job_wait_seconds": "histogram",
        "litequeue_consumers": "gauge", "litequeue_consumer_workers": "gauge",
        "litequeue_attempt_cpu_seconds": "histogram", "litequeue_attempt_peak_rss_bytes": "gauge",
    }
    for name, _, _ in samples:
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or base in types, name
    finished = {(s[1]["queue"], s[1]["task"], s[1]["outcome"]): s[2]
                for s in samples if s[0] == "litequeue_jobs_finished_total"}
    assert finished[("mail", "boom", "failed")] == 2
    assert finished[("default", "ok", "succeeded")] == 4  # two plain jobs and a pipeline's two steps
    assert finished[("default", "tick", "succeeded")] == 1
    depth = {(s[1]["queue"], s[1]["status"]): s[2] for s in samples if s[0] == "litequeue_queue_depth"}
    assert depth[("later", "scheduled")] == 1 and depth[("mail", "failed")] == 2
    assert depth[("default", "queued")] == 0  # a queue whose jobs all finished keeps its series
    assert [s[2] for s in samples if s[0] == "litequeue_consumers"] == [0]


def test_histograms_are_cumulative_and_consistent(client: FlaskClient) -> None:
    _, samples = parse(client.get("/metrics").get_data(as_text=True))
    for family in ("litequeue_job_duration_seconds", "litequeue_job_wait_seconds"):
        buckets: dict[str, list[tuple[float, float]]] = defaultdict(list)
        counts = {}
        for name, labels, value in samples:
            if name == family + "_bucket":
                le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
                buckets[labels["queue"]].append((le, value))
            elif name == family + "_count":
                counts[labels["queue"]] = value
        assert buckets, family
        for queue, series in buckets.items():
            values = [v for _, v in series]
            assert [le for le, _ in series] == sorted(le for le, _ in series)
            assert values == sorted(values), (family, queue)
            assert series[-1] == (float("inf"), counts[queue])
    durations = {labels["queue"]: value for name, labels, value in samples
                 if name == "litequeue_job_duration_seconds_count"}
    assert durations == {"default": 5, "mail": 2}  # finished jobs the ledger keeps


def test_label_values_are_escaped() -> None:
    assert label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_histograms_are_cached_for_max_age(web_db: Path) -> None:
    db = open_database(str(web_db), readonly=True, create=False)
    cache = HistogramCache(max_age=60)
    now = time.time()

    def duration_count() -> float:
        _, samples = parse(render(db, now=now, cache=cache))
        return sum(v for n, _, v in samples if n == "litequeue_job_duration_seconds_count")

    before = duration_count()
    query(web_db, "INSERT INTO lq_histogram (queue, task, kind, bucket, shard, n, total) "
                  "VALUES ('default', 'ok', 'duration', 7, 9, 1, 1.0)")  # one more ack counted
    assert duration_count() == before  # within max_age: the cached snapshot
    now += 61
    assert duration_count() == before + 1
    db.close()
