"""ASGI entry point, for Django under an ASGI server:
gunicorn -k uvicorn.workers.UvicornWorker sgdemo.asgi:application (from
examples/django). The gateway speaks HTTP/1.1 to either; the session
protocol is the same."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sgdemo.settings")

application = get_asgi_application()
