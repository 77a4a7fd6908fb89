"""Small mechanisms every part of the module shares, written once.

Standard library only, and cheap to import: the panel hook (on every save) and the
installer (before any virtualenv exists) use them too.

    clock       timezone-aware UTC, and the conversions at the MySQL boundary
    files       atomic, private file writes; refusing secret files others can read
    locks       one flock helper: blocking, non-blocking, with a deadline, fair turns, holder note
    exitstatus  the exit statuses of the CLI, the worker and the installer
"""
