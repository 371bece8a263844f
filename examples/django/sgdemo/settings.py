"""Settings of the sessiongate example Django project.

Everything that differs between deployments comes from the environment:

    DJANGO_SECRET_KEY            Django's SECRET_KEY (a fixed demo value if unset:
                                 every gunicorn worker must share it)
    DJANGO_DEBUG                 on/1/true for DEBUG (off by default)
    DJANGO_ALLOWED_HOSTS         comma-separated (default 127.0.0.1,localhost)
    DJANGO_CSRF_TRUSTED_ORIGINS  comma-separated origins, needed on Django 4+
                                 for HTTPS, e.g. https://shop.example
    DJANGO_DATABASE              sqlite file (default: in the temp directory)
    SESSIONGATE_SESSION_KEYS     the gateway's keys (read by sessiongate_django)

The one line that makes the shared session: sessiongate_django's middleware
in MIDDLEWARE instead of Django's.
"""

import os
import sys
import tempfile

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

try:
    import sessiongate_django  # noqa: F401  (pip install ./wsgi/django)
except ImportError:
    # Running from a sessiongate checkout: use its copy of the package.
    sys.path.insert(0, os.path.join(BASE_DIR, "..", "..", "wsgi", "django"))


def _list(name, default):
    return [v.strip() for v in os.environ.get(name, default).split(",") if v.strip()]


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or "sessiongate-demo-insecure-secret-key-do-not-deploy"
DEBUG = os.environ.get("DJANGO_DEBUG", "").lower() in ("1", "on", "true", "yes")
ALLOWED_HOSTS = _list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = _list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "sgdemo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The shared session (replaces django.contrib.sessions' middleware).
    "sessiongate_django.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "sgdemo.urls"
WSGI_APPLICATION = "sgdemo.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DATABASE") or os.path.join(tempfile.gettempdir(), "sessiongate-demo.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

# The gateway always sets X-Forwarded-Proto from what the client really used
# (and drops a client's own), so it can be believed.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# The admin's files are served by Django itself under /static/admin/ (see
# urls.py), so the gateway only needs that prefix in SESSIONGATE_DJANGO_PATHS.
STATIC_URL = "/static/"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "sessiongate_django": {"handlers": ["console"], "level": "INFO"},
    },
}
