"""The Batches page (progress bars, live) and its JSON twins ``/api/batches`` and
``/api/batches/<id>``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, jsonify

from litequeue.ledger import queries

from . import data

#: Members listed on a batch's page (its counts cover all of them).
MEMBERS_SHOWN = 200


def register(app: Blueprint, dbs: data.Databases, render: Callable[..., str]) -> None:
    def listing() -> dict[str, Any]:
        return {"batches": queries.list_batches(dbs.reader(), limit=100)}

    def one(batch_id: str) -> dict[str, Any]:
        batch = queries.get_batch(dbs.reader(), batch_id)
        if batch is None:
            abort(404, f"no batch {batch_id!r} in the ledger")
        batch["members"] = queries.batch_members(dbs.reader(), batch_id, limit=MEMBERS_SHOWN)
        return batch

    @app.get("/batches")
    def batches() -> Any:
        return render("batches.html", data=listing(), page="batches")

    @app.get("/api/batches")
    def api_batches() -> Any:
        return jsonify(listing())

    @app.get("/batches/<batch_id>")
    def batch(batch_id: str) -> Any:
        return render("batch.html", data=one(batch_id), page="batches", shown=MEMBERS_SHOWN)

    @app.get("/api/batches/<batch_id>")
    def api_batch(batch_id: str) -> Any:
        return jsonify(one(batch_id))
