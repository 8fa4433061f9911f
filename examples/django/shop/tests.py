"""The shop with Django's own test runner (``python manage.py test shop``): a real consumer
(``manage.py run_consumer --burst``, a subprocess) runs the job a view enqueued; a view
whose transaction rolls back leaves no job; the status page is for staff only."""

import os
import re
import subprocess
import sys
from pathlib import Path

from django.contrib.auth.models import User
from django.db import connection
from django.test import TransactionTestCase

from litequeue.contrib.django import get_queue
from litequeue.ledger import queries

from .models import Order

MANAGE = Path(__file__).resolve().parent.parent / "manage.py"


def jobs(task: str = "send_receipt") -> list[dict]:
    return queries.list_jobs(get_queue().storage.database, task=task, limit=1000)


class ShopTests(TransactionTestCase):
    """Not TestCase: its transaction around each test would hide every commit from the
    consumer (and Django's atomic() blocks here must really commit)."""

    def test_the_consumer_runs_the_job_the_view_enqueued(self):
        before = len(jobs())
        response = self.client.post("/orders", {"item": "atlas"})
        self.assertEqual(response.status_code, 201)
        job_id, order_id = response.json()["job"], response.json()["order"]
        self.assertEqual(queries.get_job(get_queue().storage.database, job_id)["status"], "queued")
        # The consumer's own process, on the test database this run made.
        env = dict(os.environ, SHOP_DB=str(connection.settings_dict["NAME"]))
        done = subprocess.run([sys.executable, str(MANAGE), "run_consumer", "--burst", "-w", "1"], env=env,
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn(f"receipt sent for order {order_id} (atlas)", done.stdout + done.stderr)
        job = queries.get_job(get_queue().storage.database, job_id)
        self.assertEqual((job["status"], job["attempts"]), ("succeeded", 1))
        self.assertTrue(Order.objects.get(pk=order_id).receipt_sent)
        self.assertEqual(len(jobs()), before + 1)

    def test_a_view_whose_transaction_rolls_back_leaves_no_job(self):
        before = len(jobs())
        response = self.client.post("/orders", {"item": "lamp", "card": "declined"})
        self.assertEqual(response.status_code, 402)
        self.assertEqual(Order.objects.count(), 0)
        self.assertEqual(len(jobs()), before)
        database = get_queue().storage.database
        self.assertEqual(database.execute_sql("SELECT COUNT(*) FROM lq_ready").fetchone()[0], 0)

    def test_the_status_page_sends_anonymous_users_to_the_admin_login(self):
        response = self.client.get("/queue/")
        self.assertEqual(response.status_code, 302)
        self.assertEqual(response["Location"], "/admin/login/?next=/queue/")
        User.objects.create_user("clerk", password="pw")  # logged in, but not staff
        self.client.login(username="clerk", password="pw")
        self.assertEqual(self.client.get("/queue/jobs").status_code, 302)

    def test_the_status_page_serves_staff_under_its_prefix(self):
        self.client.post("/orders", {"item": "globe"})
        staff = User.objects.create_user("boss", password="pw", is_staff=True)
        self.client.force_login(staff)
        page = self.client.get("/queue/")
        self.assertEqual(page.status_code, 200)
        html = page.content.decode()
        self.assertIn('href="/queue/jobs', html)  # its links carry the prefix
        self.assertNotIn('href="/jobs', html)
        listing = self.client.get("/queue/jobs?task=send_receipt")
        self.assertEqual(listing.status_code, 200)
        self.assertIn("send_receipt", listing.content.decode())
        api = self.client.get("/queue/api/overview")
        self.assertEqual(api.status_code, 200, api.content[:200])

    def test_the_status_pages_forms_work_through_django(self):
        self.client.force_login(User.objects.create_user("boss", password="pw", is_staff=True))
        html = self.client.get("/queue/").content.decode()
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)
        refused = self.client.post("/queue/queues/pause", {"queue": "mail"}, HTTP_ORIGIN="http://testserver")
        self.assertEqual(refused.status_code, 403)  # no CSRF token: the page's own check
        paused = self.client.post("/queue/queues/pause", {"queue": "mail", "csrf_token": token},
                                  HTTP_ORIGIN="http://testserver")
        self.assertEqual((paused.status_code, paused["Location"]), (303, "/queue/"))
        database = get_queue().storage.database
        rows = database.execute_sql("SELECT queue, paused FROM lq_queue_state").fetchall()
        self.assertEqual(rows, [("mail", 1)])
