"""``litequeue top``'s frame from a made-up snapshot: it fits the terminal (80x24 and larger),
says what it leaves out, marks stale consumers and the queue under the cursor, and reads
the keys a terminal sends."""

from __future__ import annotations

import time

from litequeue.cli.top import parse_keys
from litequeue.cli.top_view import STALE_AFTER, Snapshot, ViewState, budget, frame_lines, span

NOW = time.time()


def _queue(i: int, paused: bool = False) -> dict:
    return {"scheduled": 0, "queued": 10 * i, "running": 1, "retrying": 0, "failed": i % 3, "in": 60 + i,
            "out": 59 + i, "rate_estimated": [], "paused": paused}


def busy(queues: int = 30, running: int = 50, consumers: int = 10, failures: int = 20) -> Snapshot:
    snap = Snapshot(at=NOW, database="/srv/app/litequeue.db")
    snap.queues = {f"queue-{i:02d}": _queue(i, paused=i == 1) for i in range(queues)}
    snap.running = [{"id": f"01a24e76-5663-7600-a775-{i:012d}", "task": f"task_{i}", "queue": "q",
                     "consumer": "web1:4242", "worker": "thread", "started_at": NOW - 5 * i,
                     "progress": {"done": i, "total": running, "percent": round(100 * i / running, 1)}}
                    for i in range(running)]
    snap.running_total = running
    snap.consumers = [{"id": f"web{i}:{4000 + i}:abcdef", "hostname": f"web{i}", "pid": 4000 + i, "busy": 2,
                       "concurrency": 4, "worker_type": "thread", "queues": [], "heartbeat_age_s": 1.0 + i}
                      for i in range(consumers)]
    snap.failures = [{"id": f"01a24e76-0000-7000-8000-{i:012d}", "task": "boom", "finished_at": NOW - i,
                      "error": f"ValueError: bad {i}\nsecond line"} for i in range(failures)]
    return snap


def test_a_busy_frame_fits_80_by_24_and_says_what_it_leaves_out() -> None:
    lines = frame_lines(busy(), ViewState(interactive=True), 80, 24)
    assert len(lines) <= 24 and max(map(len, lines)) <= 80, "\n".join(lines)
    text = "\n".join(lines)
    for section in ("QUEUES 30", "RUNNING 50", "CONSUMERS 10", "LAST FAILURES"):
        assert section in text
    assert text.count("more") >= 3  # queues, running, consumers: "… N more"
    assert "second line" not in text and "ValueError: bad 0" in text
    assert "q quit" in lines[-1]


def test_a_larger_terminal_shows_more_rows_and_whole_ids() -> None:
    small = frame_lines(busy(), ViewState(), 80, 24)
    large = frame_lines(busy(), ViewState(), 200, 60)
    assert len(large) > len(small) and max(map(len, large)) <= 200
    assert "01a24e76-5663-7600-a775-000000000000" in "\n".join(large)
    assert "01a24e76-5663" not in "\n".join(small) and "00000000" in "\n".join(small)


def test_every_row_fits_when_the_height_is_unlimited() -> None:
    lines = frame_lines(busy(queues=3, running=4, consumers=2, failures=2), ViewState(), 80, None)
    assert "more" not in "\n".join(lines)
    assert sum(line.startswith("queue-") for line in lines) == 3
    assert max(map(len, lines)) <= 80


def test_progress_bar_and_percent() -> None:
    snap = busy(queues=1, running=1, consumers=1, failures=0)
    snap.running[0]["progress"] = {"done": 3, "total": 10, "percent": 30.0}
    text = "\n".join(frame_lines(snap, ViewState(), 80, 24))
    assert "███░░░░░░░ 30%" in text


def test_a_stale_heartbeat_is_marked() -> None:
    snap = busy(queues=1, running=0, consumers=2, failures=0)
    snap.running_total = 0
    snap.consumers[1]["heartbeat_age_s"] = STALE_AFTER + 40
    lines = frame_lines(snap, ViewState(), 80, 24)
    assert [line for line in lines if "STALE" in line] == [next(line for line in lines if line.startswith("web1"))]


def test_nothing_to_show_is_said_plainly() -> None:
    lines = frame_lines(Snapshot(at=NOW, database="lq.db"), ViewState(), 80, 24)
    text = "\n".join(lines)
    assert "no jobs yet" in text and "no job is running" in text and "no consumer is running" in text


def test_the_cursor_stays_visible_in_a_long_list() -> None:
    state = ViewState(cursor=25, interactive=True)
    lines = frame_lines(busy(), state, 80, 24)
    assert any(line.startswith("> queue-25") for line in lines), "\n".join(lines)
    assert not any(line.startswith("> queue-") and "queue-25" not in line for line in lines)


def test_paused_queue_and_prompt() -> None:
    state = ViewState(cursor=1, interactive=True, prompt="Resume queue queue-01? (y/n)")
    lines = frame_lines(busy(queues=3), state, 80, 24)
    assert any(line.startswith("> queue-01") and line.rstrip().endswith("paused") for line in lines)
    assert lines[-1] == "Resume queue queue-01? (y/n)"


def test_budget_gives_every_section_its_turn() -> None:
    assert budget([30, 50, 10, 20], 14) == [4, 4, 3, 3]
    assert budget([1, 2, 1, 1], 14) == [1, 2, 1, 1]
    assert budget([5, 5, 5, 5], 2) == [1, 1, 1, 1]


def test_keys_as_a_terminal_sends_them() -> None:
    assert parse_keys("\x1b[A\x1b[Bp") == ["up", "down", "p"]
    assert parse_keys("\x1bOA\x1bOBq") == ["up", "down", "q"]
    assert parse_keys("\x1b[5~y") == ["y"]  # page up: ignored
    assert parse_keys("\x1b") == ["escape"]


def test_span() -> None:
    assert [span(s) for s in (0.25, 42, 185, 7800, 3 * 86400 + 3600)] == ["0.2s", "42s", "3m05s", "2h10m", "3d01h"]
