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
RUN pip install --no-cache-dir django gunicorn /tmp/sessiongate-django \
 && rm -rf /tmp/sessiongate-django
WORKDIR /app
COPY examples/django/ /app/
# A system user owns the project directory: the example keeps its SQLite
# database there.
RUN useradd --system --uid 10001 --home-dir /app app \
 && chown -R app:app /app
USER app
EXPOSE 8000
# DJANGO_WSGI_MODULE names the project's WSGI application (set in
# docker-compose.yml). The database is migrated at every start (a no-op
# when it is current); gunicorn then replaces the shell.
CMD ["sh", "-c", "python manage.py migrate --noinput && exec gunicorn --bind 0.0.0.0:8000 --workers 2 --access-logfile - \"$DJANGO_WSGI_MODULE\""]
