"""Screenshots of every status page at 390 px (a phone) and 1280 px, light and dark, of a
demo ledger with a consumer running (``make screenshots``).

    python scripts/screenshots.py [--out screenshots] [--readme]

Writes PNGs into ``--out`` (gitignored); ``--readme`` also refreshes
docs/screenshot-overview.png, the picture the README shows.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.demo import Demo, build  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
WIDTHS = {"phone": (390, 844), "desktop": (1280, 860)}


def pages(demo: Demo) -> dict[str, str]:
    """Every page of the status page, by the name its screenshot gets."""
    failed = demo.ids["failed"][0]
    return {"overview": "/", "jobs": "/jobs", "jobs-failed": "/jobs?status=failed", "job-failed": f"/jobs/{failed}",
            "running": "/running", "consumers": "/consumers", "queue": "/queue/payments", "periodic": "/periodic",
            "batches": "/batches", "batch": f"/batches/{demo.ids['done_batch']}", "stats": "/stats",
            "retrying": "/jobs?status=retrying"}


def serve(demo: Demo) -> str:
    proc = demo.spawn("serve-web", "tasks", "--port", "0", "--refresh", "2", log="web.log")
    end = time.monotonic() + 30
    while time.monotonic() < end:
        found = re.search(r"litequeue status page: (http://\S+/)", (demo.root / "web.log").read_text())
        if found:
            return found.group(1).rstrip("/")
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"serve-web did not start:\n{(demo.root / 'web.log').read_text()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "screenshots"))
    parser.add_argument("--readme", action="store_true", help="Also refresh docs/screenshot-overview.png.")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lq-shots-") as tmp:
        demo = build(Path(tmp))
        try:
            base = serve(demo)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                for scheme in ("light", "dark"):
                    for label, (w, h) in WIDTHS.items():
                        context = browser.new_context(viewport={"width": w, "height": h}, color_scheme=scheme,
                                                      timezone_id="Europe/Berlin")
                        page = context.new_page()
                        for name, path in pages(demo).items():
                            page.goto(base + path)
                            page.wait_for_load_state("networkidle")
                            page.screenshot(path=str(out / f"{name}-{label}-{scheme}.png"), full_page=True)
                        context.close()
                browser.close()
        finally:
            demo.stop()
    if args.readme:
        shutil.copyfile(out / "overview-desktop-light.png", ROOT / "docs" / "screenshot-overview.png")
    print(f"wrote {len(list(out.glob('*.png')))} screenshots to {out}")


if __name__ == "__main__":
    main()
