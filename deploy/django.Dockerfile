# syntax=docker/dockerfile:1
#
# The example Django project (examples/django) under gunicorn, with the
# sessiongate_django package (wsgi/django) that reads the session the
# gateway signs. Build context: the repository root (docker-compose.yml).
#
#   docker build -f deploy/django.Dockerfile -t sessiongate-django-example .
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY wsgi/django /tmp/sessiongate-django
# Pinned to a release line: Django 5.2 is an LTS (security fixes until
# April 2028) and sessiongate_django uses nothing 4.x or 5.x removed; an
# unpinned build would take whatever Django is newest on the day, a major
# release included. `make test` runs this pair (Debian's packages of them,
# scripts/newer-django.sh) behind the gateway.
RUN pip install --no-cache-dir "django~=5.2.0" "gunicorn~=23.0" /tmp/sessiongate-django \
 && rm -rf /tmp/sessiongate-django
WORKDIR /app
COPY examples/django/ /app/
# A system user runs the app; /data holds its SQLite database
# (DJANGO_DATABASE), a volume in docker-compose.yml.
RUN useradd --system --uid 10001 --home-dir /app app \
 && mkdir /data && chown app:app /data
USER app
ENV DJANGO_WSGI_MODULE=sgdemo.wsgi \
    DJANGO_DATABASE=/data/db.sqlite3
EXPOSE 8000
# The database is migrated at every start (a no-op when it is current);
# DJANGO_DEMO_USER=on also (re)creates the demo login demo / demo-password.
# gunicorn then replaces the shell.
CMD ["sh", "-c", "python manage.py migrate --noinput && if [ \"$DJANGO_DEMO_USER\" = on ]; then python manage.py demo_user; fi && exec gunicorn --bind 0.0.0.0:8000 --workers 2 --access-logfile - \"$DJANGO_WSGI_MODULE\""]
