"""The job ledger: every job, every attempt, every consumer, kept in the queue's database."""

from litequeue.store.models import Ledger, make_ledger

__all__ = ["Ledger", "make_ledger"]
