"""``POST /orders`` saves an order and enqueues its receipt in ONE transaction: both exist,
or (the payment fails, the process dies) neither does."""

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt

from .models import Order
from .tasks import send_receipt


class PaymentDeclined(Exception):
    pass


@csrf_exempt  # an API endpoint for the example's client; a real one authenticates its callers
def place_order(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        return JsonResponse({"error": "POST an item"}, status=405)
    item = request.POST.get("item", "book")
    try:
        with transaction.atomic():
            order = Order.objects.create(item=item)
            job = send_receipt(order.id)  # joins this transaction
            if request.POST.get("card") == "declined":
                raise PaymentDeclined(item)  # rolls back the order AND the job
    except PaymentDeclined:
        return JsonResponse({"error": "payment declined: nothing was ordered"}, status=402)
    return JsonResponse({"order": order.id, "job": job.id}, status=201)


def order_status(request: HttpRequest, order_id: int) -> JsonResponse:
    order = get_object_or_404(Order, pk=order_id)
    return JsonResponse({"order": order.id, "item": order.item, "receipt_sent": order.receipt_sent})
