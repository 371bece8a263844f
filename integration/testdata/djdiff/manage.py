#!/usr/bin/env python3
"""manage.py of the Django project the session comparison runs
(integration/django_session_diff_test.go)."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djdiff.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
