"""The shop's tasks: found at start-up by ``litequeue.contrib.django`` (every app's tasks.py)."""

from litequeue.contrib.django import task

from .models import Order


@task(retries=2, retry_delay=1)
def send_receipt(order_id: int) -> dict[str, object]:
    order = Order.objects.get(pk=order_id)  # committed with the job: it is always there
    order.receipt_sent = True
    order.save(update_fields=["receipt_sent"])
    print(f"receipt sent for order {order_id} ({order.item})", flush=True)
    return {"order": order_id, "item": order.item}
