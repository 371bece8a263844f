"""WSGI entry point: gunicorn sgdemo.wsgi:application (from examples/django)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sgdemo.settings")

application = get_wsgi_application()
