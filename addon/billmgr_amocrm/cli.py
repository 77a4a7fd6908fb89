"""``sbin/amocrm``: the admin's command line. Every command calls one function of ``service``.

The client secret is never taken from argv (it would show in ``ps`` and shell
history): ``--secret-file`` or a prompt / stdin.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence, TextIO

from . import service
from .foundation.exitstatus import ExitStatus
from .service import EngineWait, Progress, ServiceError
from .service.results import DAILY_METRICS, DayCounts
from .sync.outcomes import unchanged_words

Command = Callable[[argparse.Namespace, TextIO, TextIO, TextIO], ExitStatus]


def _secret(args: argparse.Namespace, stdin: TextIO) -> str:
    if args.secret_file:
        return Path(args.secret_file).read_text(encoding="utf-8").strip()
    if stdin.isatty():
        return getpass.getpass("Secret key of the integration: ").strip()
    return stdin.readline().strip()


def _when(value: Optional[float]) -> str:
    if not value:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))


class ProgressLine:
    """One self-rewriting stderr line: counts and rate (no tqdm needed at runtime)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.last = 0.0

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if now - self.last < 0.2 and p.handled < p.total:
            return
        self.last = now
        rate = p.handled / p.elapsed if p.elapsed > 0 else 0.0
        if p.phase == "queue":
            text = f"queueing: {p.total} entities"
        else:
            width = 30
            filled = int(width * p.handled / p.total) if p.total else width
            text = (f"[{'#' * filled}{'.' * (width - filled)}] {p.handled}/{p.total} "
                    f"({rate:.0f}/s, {p.failed} failed)")
        self.out.write("\r" + text.ljust(78))
        self.out.flush()

    def close(self) -> None:
        self.out.write("\n")


def cmd_authorize(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> ExitStatus:
    if args.long_lived_token_file:
        token = _long_lived_token(args.long_lived_token_file, stdin)
        result = service.authorize_long_lived(args.url, token, client_id=args.client_id or "",
                                              redirect_uri=args.redirect_uri or "")
        out.write(f"authorized: {result.subdomain} ({result.base_url}) with a long-lived token valid until "
                  f"{_when(result.access_expires_at)}; make a new one in amoCRM before then\n")
    else:
        missing = [f"--{name.replace('_', '-')}" for name in ("client_id", "redirect_uri", "code")
                   if not getattr(args, name)]
        if missing:
            err.write(f"error: {', '.join(missing)} needed (or --long-lived-token-file instead of --code)\n")
            return ExitStatus.USAGE
        result = service.authorize(args.url, args.client_id, _secret(args, stdin), args.redirect_uri,
                                   args.code)
        out.write(f"authorized: {result.subdomain} ({result.base_url}); access token until "
                  f"{_when(result.access_expires_at)}\n")
    out.write(f"marker fields: {result.marker_field_ids}\n")
    if result.export_requested:
        out.write("initial export requested: the worker sends everything now (or run: amocrm export)\n")
    return ExitStatus.OK


def _long_lived_token(source: str, stdin: TextIO) -> str:
    """The token from a file, or from standard input for ``-`` (never from the command line,
    where every user of the host can read it)."""
    if source != "-":
        return Path(source).read_text(encoding="utf-8")
    if stdin.isatty():
        return getpass.getpass("Long-lived token: ")
    return stdin.read()


def _catalog_lines(health: Optional[service.CatalogHealth]) -> str:
    """The rules against amoCRM's catalog: "ok" or one line per problem, with what to fix."""
    if health is None:
        return "amoCRM catalog: not read yet (run: amocrm check)\n"
    if not health.problems:
        return f"amoCRM catalog: matches the rules (read {_when(health.checked_at)})\n"
    lines = [f"amoCRM catalog: {len(health.problems)} problem(s) (read {_when(health.checked_at)}):"]
    lines += [f"  - {p.en}" for p in health.problems]
    return "\n".join(lines) + "\n"


def cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> ExitStatus:
    r = service.check_connection()
    kind = " (long-lived: make a new one before it ends)" if r.token_kind == "long_lived" else ""  # noqa: S105
    out.write(f"account: {r.account_name} ({r.subdomain})\ntoken: {r.token_state}, expires "
              f"{_when(r.token_expires_at)}{kind}\nlatency: {r.latency_ms:.0f} ms\n"
              f"rate limit: {r.rate_limit:g} req/s\n")
    for problem in r.marker_problems:
        err.write(f"warning: {problem}\n")
    out.write("marker fields: " + ("see the warnings\n" if r.marker_problems else "API-only\n"))
    out.write(_catalog_lines(r.catalog))
    return ExitStatus.ERROR if r.catalog is not None and r.catalog.problems else ExitStatus.OK


def cmd_status(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> ExitStatus:
    s = service.status()
    age = f"{s.oldest_pending_age:.0f} s" if s.oldest_pending_age is not None else "-"
    if s.token_kind == "long_lived":  # noqa: S105 - a kind; no refresh token: its own end is what matters
        reason = f"long-lived, until {_when(s.access_expires_at)}"
        reason += f"; {s.token_reason}" if s.token_reason else ""
        out.write(f"token: {s.token_state} ({reason}); account {s.subdomain or '-'}\n")
    else:
        out.write(f"token: {s.token_state}{' (' + s.token_reason + ')' if s.token_reason else ''}; "
                  f"account {s.subdomain or '-'}; access until {_when(s.access_expires_at)}; "
                  f"refresh until {_when(s.refresh_expires_at)}\n")
    out.write(f"queue: {s.queue_depth} pending {s.queue_by_kind}; oldest {age}\n")
    out.write(f"failed: {s.failed} {s.failed_by_kind}\n")
    out.write(f"linked: {s.linked}\nlast sync: {s.last_sync_at or '-'}\n")
    for e in s.export:
        out.write(f"export {e.kind}: {e.queued} queued{' (finished)' if e.finished else ' (in progress)'}\n")
    if s.adopting:
        out.write(f"adopting what amoCRM holds with the module's marker: {', '.join(s.adopting)} (before "
                  "anything of them is sent)\n")
    if s.matching:
        out.write("binding clients to the contacts already in amoCRM (same e-mail or phone) before the "
                  "first export\n")
    if s.export_requested:
        out.write("export requested: waiting for the worker\n")
    notes, tasks = s.payment_notes, s.renewal_tasks
    out.write(f"payment notes: {notes.get('done', 0)} made, {notes.get('pending', 0)} pending, "
              f"{notes.get('unlinked', 0)} waiting for their contact or lead in amoCRM, "
              f"{notes.get('failed', 0)} failed\n")
    out.write(f"renewal tasks: {tasks.get('open', 0)} open, {tasks.get('pending', 0)} pending, "
              f"{tasks.get('completed', 0)} completed, {tasks.get('failed', 0)} failed\n")
    out.write(_catalog_lines(s.catalog))
    out.write(_daily_lines(s.daily))
    return ExitStatus.OK


def _daily_lines(days: Sequence[DayCounts]) -> str:
    """The last days' counts, one line per day, newest first (days without work left out)."""
    lines = [f"  {d.day:%Y-%m-%d}: " + ", ".join(f"{m} {d.counts.get(m, 0)}" for m in DAILY_METRICS)
             for d in reversed(days) if any(d.counts.values())]
    return "sent per day (host's local days):\n" + ("\n".join(lines) if lines else "  nothing yet") + "\n"


class WaitLine:
    """While another engine runs the sync: who, and how much is still due (stderr, self-rewriting)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.said = False

    def __call__(self, w: EngineWait) -> None:
        if not self.said:
            self.out.write(f"the sync engine is busy: {w.holder} is running it; waiting for it to send "
                           "what is queued (Ctrl-C stops waiting; nothing is lost)\n")
            self.said = True
        export = ", export requested" if w.export_requested else ""
        self.out.write(f"\r{w.due} due, {w.pending} pending{export} ({w.elapsed:.0f} s)".ljust(78))
        self.out.flush()

    def close(self) -> None:
        if self.said:
            self.out.write("\n")


def cmd_export(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> ExitStatus:
    if args.background:
        service.start_export()
        out.write("export requested: the worker will send everything\n")
        return ExitStatus.OK
    line, waiting = ProgressLine(err), WaitLine(err)
    try:
        r = service.run_export(progress=line, wait=not args.no_wait, on_wait=waiting)
    finally:
        waiting.close()
        line.close()
    if r.stopped == "busy":
        err.write(f"{r.stop_reason}\n")
        return ExitStatus.BUSY
    if r.by_other:
        out.write(f"export: done by {r.by_other}\n")
        return ExitStatus.OK
    rate = (r.done + r.skipped) / r.seconds if r.seconds else 0.0
    out.write(f"export: queued {r.queued}; {r.done} sent, {r.skipped} skipped, {r.failed} failed, "
              f"{r.retried} to retry; {r.seconds:.1f} s ({rate:.0f}/s)\n")
    if r.stopped:
        err.write(f"stopped: {r.stopped}: {r.stop_reason}\n")
        return ExitStatus.ERROR
    return ExitStatus.OK


def cmd_sync(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> ExitStatus:
    waiting = WaitLine(err)
    try:
        r = service.sync_now(wait=not args.no_wait, on_wait=waiting)
    finally:
        waiting.close()
    if r.stopped == "busy":
        err.write(f"{r.stop_reason}\n")
        return ExitStatus.BUSY
    if r.by_other:
        out.write(f"sync: everything due was sent by {r.by_other}\n")
        return ExitStatus.OK
    out.write(f"sync: {r.done} sent, {r.skipped} skipped, {r.failed} failed, {r.retried} to retry"
              f"{unchanged_words(r)}\n")
    if r.stopped:
        err.write(f"stopped: {r.stopped}: {r.stop_reason}\n")
    return ExitStatus.ERROR if r.stopped else ExitStatus.OK


def cmd_reconcile(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> ExitStatus:
    out.write(f"reconcile: queued {service.reconcile(full=args.full)}\n")
    return ExitStatus.OK


def cmd_renewals(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> ExitStatus:
    r = service.run_renewals_now()
    if not r.ran:
        out.write(f"the sync engine is busy ({r.holder or 'another process'}): its worker makes the renewal "
                  "tasks within the hour\n")
        return ExitStatus.BUSY
    if r.waiting:
        err.write(f"renewal tasks wait: {r.waiting}\n")
        return ExitStatus.ERROR
    out.write(f"renewal tasks: {r.planned} planned, {r.created} created, {r.completed} completed, "
              f"{r.failed} failed\n")
    return ExitStatus.OK


def cmd_resync(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> ExitStatus:
    if args.kind == "payment":
        out.write(f"payment notes queued: {service.note_payments(args.ids)}\n")
    elif args.kind == "all":
        service.resync_all()
        out.write("resync of everything requested\n")
    else:
        out.write(f"queued {service.resync(args.kind, args.ids)}\n")
    return ExitStatus.OK


def cmd_retry_failed(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> ExitStatus:
    if args.kind in ("note", "task"):
        out.write(f"revived {service.retry_failed_activities(args.kind)} failed {args.kind}s\n")
        return ExitStatus.OK
    out.write(f"revived {service.retry_failed(args.kind, args.ids or None)} failed rows\n")
    if args.kind is None and not args.ids:
        out.write(f"revived {service.retry_failed_activities()} failed notes and tasks\n")
    return ExitStatus.OK


def cmd_failed(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> ExitStatus:
    rows = [] if args.kind in ("note", "task") else service.failed(args.kind, args.limit)
    for r in rows:
        out.write(f"#{r.queue_id} {r.kind} {r.billmgr_id} (attempts {r.attempts}): {r.reason}\n")
    others = [] if args.kind in ("contact", "company", "lead") else \
        [a for a in service.failed_activities(args.limit) if args.kind in (None, a.what)]
    for a in others:
        out.write(f"{a.what} {a.about} (attempts {a.attempts}): {a.reason}\n")
    if not rows and not others:
        out.write("no failed records\n")
    return ExitStatus.OK


def cmd_adopt(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> ExitStatus:
    service.adopt()
    out.write("adoption requested: before it sends anything, the next sync pass (the worker's, or "
              "'amocrm sync' now) binds every contact, company and lead amoCRM holds with this "
              "module's marker to its billing entity, where neither is bound yet\n")
    return ExitStatus.OK


def cmd_unlink(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> ExitStatus:
    out.write(f"unlinked {service.unlink(args.kind, args.ids)}\n")
    return ExitStatus.OK


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="amocrm", description="BILLmanager -> amoCRM module: admin commands")
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("authorize", help="exchange the one-time code from amoCRM "
                                            "(or store a long-lived token)")
    a.add_argument("--url", required=True, help="https://yourcompany.amocrm.ru")
    a.add_argument("--client-id", help="the integration ID (needed with --code)")
    a.add_argument("--redirect-uri", help="the integration's redirect URL (needed with --code)")
    how = a.add_mutually_exclusive_group(required=True)
    how.add_argument("--code", help="the authorization code (valid 20 minutes)")
    how.add_argument("--long-lived-token-file", metavar="FILE",
                     help="a private integration's long-lived token, from FILE or - for stdin "
                          "(instead of --code: no refresh token, nothing to lapse)")
    a.add_argument("--secret-file", help="file holding the secret key (else prompt or stdin)")
    a.set_defaults(func=cmd_authorize)
    sub.add_parser("check", help="check the connection to amoCRM").set_defaults(func=cmd_check)
    sub.add_parser("status", help="token, queue, failures, export progress").set_defaults(func=cmd_status)
    e = sub.add_parser("export", help="initial export / resync all, with a progress bar")
    e.add_argument("--background", action="store_true", help="only ask the worker to do it")
    e.add_argument("--no-wait", action="store_true",
                   help="if another engine runs the sync, ask it to export and exit (status 4)")
    e.set_defaults(func=cmd_export)
    sy = sub.add_parser("sync", help="one worker pass now (or wait for the engine that runs)")
    sy.add_argument("--no-wait", action="store_true", help="if another engine runs the sync, exit (status 4)")
    sy.set_defaults(func=cmd_sync)
    rc = sub.add_parser("reconcile", help="queue what changed without an event")
    rc.add_argument("--full", action="store_true",
                    help="also compare every linked entity with what was last sent now (else daily)")
    rc.set_defaults(func=cmd_reconcile)
    sub.add_parser("renewals", help="make and complete renewal tasks now (else hourly)").set_defaults(
        func=cmd_renewals)
    r = sub.add_parser("resync", help="queue entities again: resync KIND ID... | resync all | "
                                      "resync payment ID... (note payments as they are now)")
    r.add_argument("kind", choices=["contact", "company", "lead", "all", "payment"])
    r.add_argument("ids", nargs="*", type=int)
    r.set_defaults(func=cmd_resync)
    rf = sub.add_parser("retry-failed", help="revive failed records (and payment notes, renewal tasks)")
    rf.add_argument("kind", nargs="?", choices=["contact", "company", "lead", "note", "task"])
    rf.add_argument("--ids", nargs="*", type=int, help="queue row ids (from 'amocrm failed')")
    rf.set_defaults(func=cmd_retry_failed)
    f = sub.add_parser("failed", help="list failed records, payment notes and renewal tasks with amoCRM's "
                                      "reasons")
    f.add_argument("kind", nargs="?", choices=["contact", "company", "lead", "note", "task"])
    f.add_argument("--limit", type=int, default=100)
    f.set_defaults(func=cmd_failed)
    sub.add_parser("adopt", help="bind what amoCRM holds with this module's marker when the module's "
                                 "tables lost it (moved without them)").set_defaults(func=cmd_adopt)
    u = sub.add_parser("unlink", help="forget links: unlink KIND ID...")
    u.add_argument("kind", choices=["contact", "company", "lead"])
    u.add_argument("ids", nargs="+", type=int)
    u.set_defaults(func=cmd_unlink)
    return p


def main(argv: Optional[Sequence[str]] = None, *, out: Optional[TextIO] = None, err: Optional[TextIO] = None,
         stdin: Optional[TextIO] = None) -> ExitStatus:
    out, err, stdin = out or sys.stdout, err or sys.stderr, stdin or sys.stdin
    args = parser().parse_args(argv)
    from .logsetup import setup_logging

    try:
        setup_logging("amocrm_action")
    except OSError as exc:
        err.write(f"warning: cannot open the log: {exc}\n")
    func: Command = args.func
    try:
        return func(args, out, err, stdin)
    except ServiceError as exc:
        err.write(f"error: {exc.message_en}\n")
        if exc.hint:
            err.write(f"hint: {exc.hint}\n")
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        # the reader left (`amocrm status | head`): no traceback for that, and the flush at exit
        # must not hit the closed pipe again (the Python documentation's recipe for SIGPIPE)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitStatus.ERROR
