"""Exit statuses of ``sbin/amocrm``, ``sbin/amocrm_task`` and ``sbin/amocrm-install``."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1             # the command failed; the message says why
    USAGE = 2             # bad arguments or settings: nothing was done
    NOT_AUTHORIZED = 3    # amoCRM cannot be used: authorize again, or the account is stopped
    BUSY = 4              # another engine holds the sync; nothing was run beside it
    INTERRUPTED = 130     # Ctrl-C (128 + SIGINT), as a shell reports it
