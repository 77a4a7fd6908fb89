"""How a use case gets its adapters: the caller's ``App``, or one built for the call and closed after it.

Either way a failure reaches the caller as a :class:`~.errors.ServiceError`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Optional

from ..domain import Kind
from .errors import BadInput, ServiceError, translate

if TYPE_CHECKING:
    from ..bootstrap import App
    from ..paths import HostPaths


@contextmanager
def using(app: Optional[App]) -> Iterator[App]:
    """The caller's app, or one built for this call and closed after it; errors become ServiceError."""
    live = app
    try:
        if live is None:
            from ..bootstrap import build

            live = build()
        yield live
    except ServiceError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure reaches the admin as a ServiceError
        raise translate(exc) from exc
    finally:
        if app is None and live is not None:
            live.close()


def paths_of(app: Optional[App]) -> HostPaths:
    """The host root of the caller's app, or this host's (for the use cases that need no database)."""
    from ..paths import host_paths

    return app.paths if app is not None else host_paths()


def kind_of(value: Any) -> Kind:
    try:
        return value if isinstance(value, Kind) else Kind(str(value))
    except ValueError:
        names = ", ".join(k.value for k in Kind)
        raise BadInput(f"Неизвестный тип сущности {value!r} (ожидается {names})",
                       f"Unknown entity kind {value!r} (expected {names})") from None
