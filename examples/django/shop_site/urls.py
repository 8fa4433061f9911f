from django.contrib import admin
from django.urls import include, path
from shop import views

urlpatterns = [
    path("admin/", admin.site.urls),
    # litequeue's status page, for staff users (others are sent to the admin's login)
    path("queue/", include("litequeue.contrib.django.urls")),
    path("orders", views.place_order, name="place_order"),
    path("orders/<int:order_id>", views.order_status, name="order_status"),
]
