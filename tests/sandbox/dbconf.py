"""db.conf as BILLmanager writes it, for the roots the tests, the demo and the benchmarks build.

The module only reads db.conf (``billmgr_amocrm.dbconf``); writing one is the host's job,
and here the sandbox's.
"""

from __future__ import annotations

from billmgr_amocrm.dbconf import DbSettings


def render_db_conf(settings: DbSettings) -> str:
    lines = [
        f"DBHost {settings.host}",
        f"DBPort {settings.port}",
        f"DBUser {settings.user}",
        f"DBPassword {settings.password}",
        f"DBName {settings.database}",
    ]
    if settings.unix_socket:
        lines.append(f"DBSocket {settings.unix_socket}")
    return "\n".join(lines) + "\n"
