"""Figure 3b: the pipeline when payers' requisites come from mgrctl, beside the same export by columns.

BILLmanager may keep a payer's requisites out of ``profile``'s columns; the reader then asks
``mgrctl ... profile.edit`` once per legal-entity payer (``billing.payers``, up to
``MGRCTL_WORKERS`` at a time). Here the mgrctl is the sandbox's fake, a Python process with a
database query each call, so the per-call cost is of that order, not BILLmanager's own.
Information, not a target: it shows what the columns save, and what a host without them pays.
"""

from __future__ import annotations

from tests.sandbox.fake_mgrctl import calls

from .report import Figure, Results
from .sitesetup import Site
from .throughput import MAX_RATE, export_in_child


def run(results: Results, clients: int) -> None:
    runs = {}
    for columns in (True, False):
        with Site.create(rate_limit=float(MAX_RATE)) as site:
            summary = site.sandbox(clients=clients, services=clients * 2, requisite_columns=columns)
            site.start_emulator(limit=False)
            site.authorize()
            export = export_in_child(site, "--unthrottled")
            made = [c for c in calls(site.root) if c.startswith("profile.edit")]
            runs[columns] = (export, len(made), summary.payers_by_type.get(2, 0))
    by_columns, _, legal = runs[True]
    by_mgrctl, made, _ = runs[False]
    extra = by_mgrctl.seconds - by_columns.seconds
    per_call = extra / made * 1000 if made else 0.0
    results.add(Figure(f"3b. pipeline, payers through mgrctl ({legal:,} legal payers, {by_mgrctl.entities:,} "
                       "entities)", f"{by_mgrctl.rate:,.0f} entities/s ({by_mgrctl.seconds:.1f} s) vs "
                       f"{by_columns.rate:,.0f}/s by columns ({by_columns.seconds:.1f} s)", "-"))
    results.note(f"payers through mgrctl: {made} profile.edit calls for {legal} legal payers; {extra:.1f} s "
                 f"more than by columns, {per_call:.0f} ms of wall time per call with the fake mgrctl "
                 "(a Python process and a query each), calls running 4 at a time.")
