"""BILLmanager sandbox: a MariaDB database shaped like BILLmanager's own tables.

``python -m tests.sandbox --clients N --services M [--db NAME] [--seed S] [--drop]
[--write-db-conf]`` builds one; ``create_sandbox`` and ``Sandbox`` (see generate.py)
do the same from Python and let tests edit it the way the panel would.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The package lives beside the panel's executables (addon/), as on a host; make it
# importable for `python -m tests.sandbox` without an installed checkout.
_ADDON = str(Path(__file__).resolve().parents[2] / "addon")
if _ADDON not in sys.path:
    sys.path.insert(0, _ADDON)

from .generate import (  # noqa: E402
    DIRTY_CASES,
    NewClient,
    Sandbox,
    SandboxSummary,
    add_client,
    add_payer,
    add_user,
    create_database,
    create_sandbox,
    drop_database,
    edit_client,
    edit_payer,
    edit_user,
    load_schema,
    open_service,
    prolong_service,
    server_connection,
    set_service_name,
    set_service_param,
    set_service_status,
)

__all__ = [
    "DIRTY_CASES", "NewClient", "Sandbox", "SandboxSummary", "add_client", "add_payer", "add_user",
    "create_database", "create_sandbox", "drop_database", "edit_client", "edit_payer", "edit_user",
    "load_schema", "open_service", "prolong_service", "server_connection", "set_service_name",
    "set_service_param", "set_service_status",
]
