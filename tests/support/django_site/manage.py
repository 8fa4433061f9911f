"""``manage.py`` of the Django project the contrib tests run (tests/integration/test_django_contrib.py)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "probe_settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
