"""A directory of small JSON files: the panel hook's only write path.

The hook runs inside the user's request, so it does the cheapest durable thing:
one file per event, written under a temp name and renamed, fsynced, 0600. The
worker drains the files in time order into the MySQL queue and deletes each one
only after that succeeded, so a crash anywhere loses nothing (an event may be
handled twice, which the queue's coalescing makes harmless).

File names sort by time: ``<time_ns, 20 digits>-<pid>-<random hex>.json``. Temp
files start with ``.`` and are ignored by readers. A file that cannot be read as an
event is moved to ``bad/`` with a log line, never dropped silently.

Imports only ``os``, ``time`` and ``foundation.files`` at module level: the hook imports
this module on every save, and ``json``/``typing``/``pathlib`` would pull in ``re`` and
``enum`` (milliseconds on every save). Events are flat, so ``_dumps`` writes the JSON by hand;
the reading side (the worker) uses ``json``.
"""

from __future__ import annotations

import os
import time

from ..foundation.files import fsync_dir, write_atomic

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Union

    PathLike = Union[str, "os.PathLike[str]"]

EVENT_VERSION = 1
# The only keys an event may carry (request parameters are whitelisted again in the hook).
EVENT_KEYS = frozenset({"v", "func", "elid", "plid", "su", "email", "profiletype", "doc_id",
                        "ts", "user", "level"})
MAX_VALUE_CHARS = 256
MAX_FILE_BYTES = 64 * 1024
BAD_DIR = "bad"
STALE_TMP_SECONDS = 24 * 3600


class BadEvent(ValueError):
    """A spool file that is not a readable event."""


def _clean(event: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key in EVENT_KEYS:
        value = event.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, str):
            # os.environ smuggles non-UTF-8 bytes in as lone surrogates, which MySQL
            # would refuse later, blocking the drain: make them plain "?" now.
            value = value[:MAX_VALUE_CHARS].encode("utf-8", "replace").decode("utf-8")
        elif not isinstance(value, (int, float)) or isinstance(value, bool):
            value = str(value)[:MAX_VALUE_CHARS]
        kept[key] = value
    kept["v"] = EVENT_VERSION
    return kept


def _json_string(text: str) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:  # outside the BMP: a surrogate pair, as JSON wants
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    out.append('"')
    return "".join(out)


def _dumps(event: dict[str, Any]) -> str:
    """JSON for a flat dict of str / int / float values (what ``_clean`` leaves)."""
    items = []
    for key in sorted(event):
        value = event[key]
        if isinstance(value, str):
            text = _json_string(value)
        elif isinstance(value, float):
            text = repr(value) if value == value and value not in (float("inf"), float("-inf")) else "null"
        else:
            text = str(int(value))
        items.append(f"{_json_string(key)}: {text}")
    return "{" + ", ".join(items) + "}"


def record_event(spool_dir: PathLike, event: dict[str, Any]) -> str:
    """Durably add one event; return the file name. Only ``EVENT_KEYS`` are written."""
    os.makedirs(spool_dir, mode=0o700, exist_ok=True)
    data = _dumps(_clean(event)).encode("ascii")
    name = f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(4).hex()}.json"
    write_atomic(os.path.join(spool_dir, name), data, temp_name=f".{name}.tmp", make_dirs=False)
    return name


def pending_files(spool_dir: PathLike) -> list[str]:
    """Event files waiting, oldest first (temp files and sub-directories excluded)."""
    try:
        names = os.listdir(spool_dir)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.endswith(".json") and not n.startswith("."))


def parse_event(data: bytes) -> dict[str, Any]:
    """The event in a spool file, or ``BadEvent`` saying why not."""
    import json

    if len(data) > MAX_FILE_BYTES:
        raise BadEvent(f"file is {len(data)} bytes, more than an event can be")
    try:
        event = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadEvent(f"not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise BadEvent("not a JSON object")
    if event.get("v") != EVENT_VERSION:
        raise BadEvent(f"unknown event version {event.get('v')!r}")
    if not isinstance(event.get("func"), str) or not event["func"]:
        raise BadEvent("no func")
    return {k: v for k, v in event.items() if k in EVENT_KEYS}


def _quarantine(spool_dir: PathLike, name: str, why: str, log: Any) -> None:
    bad = os.path.join(spool_dir, BAD_DIR)
    os.makedirs(bad, mode=0o700, exist_ok=True)
    os.replace(os.path.join(spool_dir, name), os.path.join(bad, name))
    fsync_dir(spool_dir)
    log.warning("spool: moved unreadable event %s to %s: %s", name, bad, why)


def _remove_stale_tmp(spool_dir: PathLike, now: float) -> None:
    """Temp files of a hook that died before its rename are never events; clear old ones."""
    try:
        names = os.listdir(spool_dir)
    except FileNotFoundError:
        return
    for name in names:
        if name.startswith(".") and name.endswith(".tmp"):
            path = os.path.join(spool_dir, name)
            try:
                if now - os.stat(path).st_mtime > STALE_TMP_SECONDS:
                    os.unlink(path)
            except OSError:
                continue


def drain(spool_dir: PathLike, handle: Callable[[dict[str, Any]], None], limit: int | None = None) -> int:
    """Pass events to ``handle`` oldest first; delete each file only after ``handle`` returned.

    Returns how many events were handled. If ``handle`` raises, draining stops there
    and the exception propagates: that file and all later ones stay for the next run.
    Unreadable files go to ``bad/`` and do not stop the drain.
    """
    import logging

    log = logging.getLogger(__name__)
    _remove_stale_tmp(spool_dir, time.time())
    handled = 0
    for name in pending_files(spool_dir):
        if limit is not None and handled >= limit:
            break
        path = os.path.join(spool_dir, name)
        try:
            with open(path, "rb") as file:
                data = file.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            continue  # another drainer took it
        try:
            event = parse_event(data)
        except BadEvent as exc:
            _quarantine(spool_dir, name, str(exc), log)
            continue
        handle(event)
        try:  # noqa: SIM105 - see above
            os.unlink(path)
        except FileNotFoundError:
            pass
        handled += 1
    if handled:
        fsync_dir(spool_dir)
    return handled
