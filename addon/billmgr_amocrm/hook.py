"""The panel event hook: echo the document, note the event in the spool, nothing else.

BILLmanager runs ``addon/amocrm_event`` synchronously inside the user's request for
``register``, ``account.edit``, ``user.edit``, ``profile.edit``, ``profile.delete``, the service events
``service.postopen``, ``postprolong``, ``postsuspend``, ``postresume``, ``postclose``,
``postreopen``, ``postsetparam`` and the
payment events ``payment.setpaid`` / ``setcanceled`` / ``setfraud`` (``after="yes"``,
``type="xml"``). With ``type="xml"`` our stdout replaces the panel's document, so the hook
always writes stdin back byte for byte, never prints anything else, and always exits 0,
whatever fails.

It records an event only for a real save (``PARAM_sok`` set and no ``<error>`` child of the
document's root: an ``after`` handler also runs when a form is merely opened; the payment
actions and a payer's deletion have no form and come without ``sok``,
``unverified.EVENTS_WITHOUT_SOK``) and only the whitelisted parameters
(``unverified.EVENT_PARAMS_KEPT``): never passwords. A created object's id comes from the
root's own ``<id>`` child (``hookdoc``: never from a nested document). It opens no network
or database connection and imports only the standard library plus its own stdlib-only
modules (``hookdoc``, ``paths``, ``store.spool``, ``foundation.files``): it runs on the
host's own Python 3, outside the module's virtualenv, so that a broken virtualenv cannot
break a save. The worker moves spooled events into the MySQL queue.

The spool write runs in a child process and the save waits for it at most
``WRITE_DEADLINE_SECONDS`` (see ``record_within_deadline``): a stalled disk cannot hang
the panel. A failure leaves one line in ``var/amocrm_task.log`` (plain ``os.write``: the
logging package is not worth importing here), written by a process the save does not
wait for, and the panel never notices.

Most calls are form opens (no ``sok``): they import nothing beyond ``os``, ``sys`` and
``time``. The rest is imported only when there is an event to record or a failure to log.
"""

from __future__ import annotations

import os
import sys
import time

from .unverified import EVENT_PARAMS_KEPT, EVENTS_WITHOUT_SOK, HOOKED_EVENTS

EVENT_VERSION = 1

MINIMAL_DOC = b'<?xml version="1.0" encoding="UTF-8"?>\n<doc/>\n'
# How much of the document is inspected (for <error and <id>); all of it is echoed.
INSPECT_BYTES = 1024 * 1024
COPY_CHUNK = 1024 * 1024
# How long a save in the panel may wait for the hook's own write (see record_within_deadline).
WRITE_DEADLINE_SECONDS = 2.0
# Request parameters that become event fields (sok only gates, it is not kept).
EVENT_PARAMS = tuple(p for p in EVENT_PARAMS_KEPT if p != "sok")


def _echo(stdin: object, stdout: object) -> bytes:
    """Copy stdin to stdout; return the first ``INSPECT_BYTES`` for inspection."""
    head = _read_up_to(stdin, INSPECT_BYTES)
    if not head:
        _write(stdout, MINIMAL_DOC)
        return b""
    _write(stdout, head)
    while True:
        chunk = stdin.read(COPY_CHUNK)  # type: ignore[attr-defined]
        if not chunk:
            break
        _write(stdout, chunk)
    stdout.flush()  # type: ignore[attr-defined]
    return head


def _read_up_to(stdin: object, size: int) -> bytes:
    parts = []
    remaining = size
    while remaining > 0:
        chunk = stdin.read(remaining)  # type: ignore[attr-defined]
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _write(stdout: object, data: bytes) -> None:
    stdout.write(data)  # type: ignore[attr-defined]


def build_event(environ: dict[str, str], doc: bytes, now: float) -> dict[str, object] | None:
    """The event to record, or None when this call is not a real save of a hooked function."""
    func = environ.get("PARAM_func") or environ.get("ACTION_NAME") or ""
    if func not in HOOKED_EVENTS:
        return None
    if not environ.get("PARAM_sok") and func not in EVENTS_WITHOUT_SOK:
        return None
    from .hookdoc import root_facts

    found, failed = root_facts(doc)
    if failed:
        return None
    event: dict[str, object] = {"v": EVENT_VERSION, "ts": now}
    for name in EVENT_PARAMS:
        value = environ.get(f"PARAM_{name}", "")
        if value:
            event[name] = value
    event["func"] = func
    if found:
        event["doc_id"] = found
    if environ.get("AUTH_USER"):
        event["user"] = environ["AUTH_USER"]
    level = environ.get("AUTH_LEVEL", "")
    if level.isdigit():
        event["level"] = int(level)
    return event


def log_failure(message: str) -> None:
    """One ISPsystem-format line in var/amocrm_task.log; silent if even that fails.

    This write can block on a stalled disk like any other: the hook's own process calls
    ``_log_detached`` instead, and only its helper processes call this directly.
    """
    try:
        stamp = time.strftime("%b %d %H:%M:%S")
        line = f"{stamp} [{os.getpid()}] amocrm_event ERROR {message}".replace("\n", " ")[:2000] + "\n"
        from .paths import task_log_str

        fd = os.open(task_log_str(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode("utf-8", errors="replace"))
        finally:
            os.close(fd)
    except Exception:  # noqa: BLE001, S110 - the panel must never see the hook fail
        pass


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _event_label() -> str:
    func, elid = os.environ.get("PARAM_func", "?"), os.environ.get("PARAM_elid", "")  # noqa: SIM112
    return f"hook: event {func} elid={elid[:64]!r}"


def _leave_the_panels_pipes() -> None:
    """A helper process must not hold the panel's stdin/stdout/stderr: the save ends when they close."""
    for fd in (0, 1, 2):
        try:  # noqa: SIM105 - contextlib is not worth importing here
            os.close(fd)
        except OSError:
            pass


def _log_detached(message: str) -> None:
    """``log_failure`` in a child process nobody waits for, so a stalled disk cannot hold the save."""
    try:
        pid = os.fork()
    except OSError:
        log_failure(message)
        return
    if pid == 0:
        try:
            _leave_the_panels_pipes()
            log_failure(message)
        finally:
            os._exit(0)


def _spool(event: dict[str, object]) -> None:
    from .paths import spool_dir_str
    from .store import spool

    spool.record_event(spool_dir_str(), event)


def _writer(event: dict[str, object], done: int, started: float, deadline: float) -> None:
    """The child's work: spool the event, then tell the waiting hook (if it still waits)."""
    try:
        _leave_the_panels_pipes()
        _spool(event)
    except BaseException as exc:  # noqa: BLE001 - logged; the hook's process has already echoed
        log_failure(f"{_event_label()} not recorded: {_describe(exc)}")
        return
    try:
        os.write(done, b"1")
    except OSError:  # the hook stopped waiting: say how late the event was recorded
        log_failure(f"{_event_label()} recorded after {time.monotonic() - started:.1f} s; the panel's "
                    f"save had gone on after {deadline:g} s")


def record_within_deadline(event: dict[str, object], deadline: float = WRITE_DEADLINE_SECONDS) -> bool:
    """Spool ``event`` in a child process and wait for it at most ``deadline`` seconds.

    A write to a stalled disk blocks inside the kernel, where no timer or signal reaches it,
    and a thread stuck there would keep the whole process (and the panel's pipe) alive; a
    child process that holds none of the panel's pipes can be left behind. Normally the child
    is done in a millisecond and the event is durable when the hook exits. After the deadline
    the hook logs it (from a detached child) and returns; the child finishes the write when
    the disk answers, and logs how late. Returns whether the event was recorded in time.
    """
    import select

    started = time.monotonic()
    ready, done = os.pipe()
    try:
        pid = os.fork()
    except OSError:  # no process to be had: write here, unbounded, rather than lose the event
        os.close(ready)
        os.close(done)
        _spool(event)
        return True
    if pid == 0:
        try:
            os.close(ready)
            _writer(event, done, started, deadline)
        finally:
            os._exit(0)
    os.close(done)
    try:
        answered, _, _ = select.select([ready], [], [], deadline)
        recorded = bool(answered) and os.read(ready, 1) == b"1"
    finally:
        os.close(ready)
    if not answered:
        _log_detached(f"{_event_label()}: the spool write did not finish within {deadline:g} s; the "
                      f"panel's save went on, process {pid} finishes the write when the disk answers")
        return False
    os.waitpid(pid, os.WNOHANG)  # reap it if it has exited; if not, init will
    return recorded


def main() -> int:
    """Echo stdin to stdout, record the event; always 0."""
    stdin = sys.stdin.buffer if sys.stdin is not None else None
    stdout = sys.stdout.buffer
    head = b""
    try:
        head = _echo(stdin, stdout) if stdin is not None else b""
        if stdin is None:
            _write(stdout, MINIMAL_DOC)
        stdout.flush()  # before any fork: a child must not inherit unwritten output
    except BaseException as exc:  # noqa: BLE001 - never break the panel
        _log_detached(f"hook: cannot echo the document: {_describe(exc)}")
    try:
        event = build_event(dict(os.environ), head, time.time())
        if event is not None:
            record_within_deadline(event)
    except BaseException as exc:  # noqa: BLE001 - never break the panel
        _log_detached(f"{_event_label()} not recorded: {_describe(exc)}")
    try:  # noqa: SIM105 - whatever an echo that failed half-way left in the buffer (the caller may _exit)
        stdout.flush()
    except BaseException:  # noqa: BLE001, S110 - nothing left to tell anyone
        pass
    return 0
