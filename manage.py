#!/usr/bin/env python
"""Django's command-line utility for the mall shop."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mall.settings")
    from mall.startup import load_settings_or_exit

    load_settings_or_exit()  # a misconfiguration: one line naming the variable, exit status 1
    from mall.telemetry import configure_telemetry

    # Before any command builds the WSGI handler (DjangoInstrumentor adds a middleware).
    configure_telemetry()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
