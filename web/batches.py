"""The Batches page (progress bars, live) and its JSON twins ``/api/batches`` and
``/api/batches/<id>``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, jsonify, request

from litequeue.ledger import queries

from . import data

#: Members listed per page of a batch's page (its counts cover all of them).
MEMBERS_SHOWN = 100


def register(app: Blueprint, dbs: data.Databases, render: Callable[..., str]) -> None:
    def listing() -> dict[str, Any]:
        return {"batches": queries.list_batches(dbs.reader(), limit=100)}

    def one(batch_id: str) -> dict[str, Any]:
        db = dbs.reader()
        batch = queries.get_batch(db, batch_id)
        if batch is None:
            abort(404, f"no batch {batch_id!r} in the ledger")
        status = request.args.get("status") or None
        if status is not None and status not in data.STATUSES:
            raise data.BadRequest(f"status must be one of {', '.join(data.STATUSES)}, not {status!r}")
        try:
            page = max(1, int(request.args.get("page") or 1))
        except ValueError:
            raise data.BadRequest("page must be a number (1, 2, ...)") from None
        batch["members"] = queries.batch_members(db, batch_id, limit=MEMBERS_SHOWN, status=status,
                                                 offset=(page - 1) * MEMBERS_SHOWN)
        batch["member_filter"] = {"status": status, "page": page, "per_page": MEMBERS_SHOWN,
                                  "matching": queries.batch_member_count(db, batch_id, status)}
        batch["failed_not_retried"] = len(queries.batch_failed_ids(db, batch_id))
        return batch

    @app.get("/batches")
    def batches() -> Any:
        return render("batches.html", data=listing(), page="batches")

    @app.get("/api/batches")
    def api_batches() -> Any:
        return jsonify(listing())

    @app.get("/batches/<batch_id>")
    def batch(batch_id: str) -> Any:
        return render("batch.html", data=one(batch_id), page="batches", statuses=data.STATUSES)

    @app.get("/api/batches/<batch_id>")
    def api_batch(batch_id: str) -> Any:
        return jsonify(one(batch_id))
