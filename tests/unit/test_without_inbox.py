"""The inbox plugs in; the core does not know it: with ``litequeue.inbox`` unimportable
(as if the folder were removed), the library, the CLI and the page still work end to end."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = """
import importlib.abc, sys

class NoInbox(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "litequeue.inbox" or name.startswith("litequeue.inbox."):
            raise ImportError(f"{name} removed for this test")
        return None

sys.meta_path.insert(0, NoInbox())

from click.testing import CliRunner
from litequeue import LiteQueue
from litequeue.cli import main
from litequeue.ops import plugins

db = sys.argv[1]
app = LiteQueue("noinbox", db=db)

@app.task()
def double(n):
    return n * 2

results = [double(i) for i in range(5)]
consumer = app.create_consumer(workers=2, burst=True)
plugins.install(app)  # nothing to install: no error
consumer.run()
assert [r.get() for r in results] == [0, 2, 4, 6, 8]
out = CliRunner().invoke(main, ["--db", db, "status"])
assert out.exit_code == 0, out.output
assert plugins.retry_hooks() == []

from litequeue_web import create_app
from litequeue_web.settings import WebSettings
client = create_app(WebSettings(db=db)).test_client()
assert client.get("/", headers={"Host": "127.0.0.1"}).status_code == 200
assert "litequeue.inbox" not in sys.modules
print("ok")
"""


def test_core_cli_and_page_work_without_the_inbox(tmp_path):
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT), str(tmp_path / "lq.db")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("ok")
