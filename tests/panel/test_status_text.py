"""The status page's export line says what the worker will do next, as ``amocrm status`` does:
the adoption a pass runs first after the module was installed again, and an export asked for
that no worker has begun (it said "not started" in both cases)."""

from __future__ import annotations

from billmgr_amocrm.panel.forms import export_text
from billmgr_amocrm.service.results import ExportKindProgress


class Report:
    def __init__(self, export=(), export_requested=False, adopting=()):
        self.export, self.export_requested, self.adopting = list(export), export_requested, adopting


def test_nothing_asked_is_not_started():
    assert export_text(Report(), "en") == "not started"


def test_an_export_asked_for_waits_for_the_worker_until_it_queues():
    assert export_text(Report(export_requested=True), "en") == \
        "requested, waiting for the worker (amocrm_task)"
    queueing = [ExportKindProgress("contact", 250, True), ExportKindProgress("company", 40, False)]
    assert export_text(Report(queueing, export_requested=True), "en") == \
        "Contact (client): finished (250); Company (payer): 40 of …"


def test_a_new_export_asked_for_after_a_finished_one_is_shown_beside_it():
    done = [ExportKindProgress(kind, 10, True) for kind in ("contact", "company", "lead")]
    assert export_text(Report(done, export_requested=True), "ru").endswith(
        "; запрошена, ждёт обработчика очереди (amocrm_task)")


def test_the_adoption_comes_first_naming_the_kinds_as_the_page_does():
    report = Report(export_requested=True, adopting=("contacts", "leads"))
    assert export_text(report, "en") == (
        "first binding what amoCRM already holds with the module's marker: Contact (client), Lead (service); "
        "requested, waiting for the worker (amocrm_task)")
    assert export_text(report, "ru").startswith(
        "сначала связываются записи, которые уже есть в amoCRM с меткой модуля: "
        "Контакт (клиент), Сделка (услуга);")
