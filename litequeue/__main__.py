from litequeue.cli import run

run()
