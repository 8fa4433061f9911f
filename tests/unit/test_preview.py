from __future__ import annotations

import json

from litequeue.base.preview import REDACTED, preview


def test_plain_values_pass_through():
    assert json.loads(preview([1, "a", None, 2.5, True])) == [1, "a", None, 2.5, True]
    assert preview({}) == "{}"


def test_secret_keys_and_values_are_redacted():
    out = json.loads(preview({"user": "ann", "password": "hunter2", "api_key": "x", "nested": {"token": 1}}))
    assert out == {"user": "ann", "password": REDACTED, "api_key": REDACTED, "nested": {"token": REDACTED}}
    assert json.loads(preview(["sk-abcdefghijklmnopqrstuvwx", "ghp_" + "a" * 30])) == [REDACTED, REDACTED]


def test_long_values_are_cut_and_objects_never_pickled():
    out = json.loads(preview(["x" * 1000]))
    assert out[0].startswith("x" * 200) and out[0].endswith("(+800 chars)")
    assert len(json.loads(preview(list(range(100))))) == 21

    class Secretive:
        def __repr__(self) -> str:
            return "Secretive()"

    assert json.loads(preview([Secretive()])) == ["<Secretive: Secretive()>"]
    assert json.loads(preview([b"\x00\x01"])) == ["<2 bytes>"]


def test_html_is_kept_as_text():
    assert json.loads(preview(["<script>alert(1)</script>"])) == ["<script>alert(1)</script>"]
