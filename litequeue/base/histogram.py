"""The buckets of the run-time histograms: what the acks count (``lq_histogram``) and what
``/metrics`` reports (Prometheus ``le`` bounds, seconds)."""

from __future__ import annotations

from bisect import bisect_left

#: Upper bounds, in seconds; a value above the last falls in the overflow bucket ``len(BUCKETS)``.
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                              300.0, 900.0, 3600.0)


def bucket_of(value: float) -> int:
    """The index of the smallest bound ``value`` does not exceed (``len(BUCKETS)``: above all)."""
    return bisect_left(BUCKETS, value)


def bucket_sql(column: str) -> str:
    """:func:`bucket_of` as an SQL expression of ``column``."""
    return "CASE " + " ".join(f"WHEN {column} <= {b!r} THEN {i}" for i, b in enumerate(BUCKETS)) + \
        f" ELSE {len(BUCKETS)} END"
