import os

import django.contrib.admin
from django.contrib import admin
from django.urls import path, re_path
from django.views.static import serve

from . import views

# The admin's CSS/JS straight from the installed Django, so the example
# needs no collectstatic step (a real site would collect them and let the
# gateway or a CDN serve them).
ADMIN_STATIC = os.path.join(os.path.dirname(django.contrib.admin.__file__), "static", "admin")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", views.index),
    path("accounts/cart/", views.cart),
    path("accounts/counter/", views.counter),
    path("accounts/boom/", views.boom),
    path("accounts/whoami/", views.whoami),
    re_path(r"^static/admin/(?P<path>.+)$", serve, {"document_root": ADMIN_STATIC}),
]
