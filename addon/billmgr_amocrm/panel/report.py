"""``amocrm.report``: the last 30 days at a glance, BILLmanager's report form with a chart.

The descriptor holds the report's metadata (a band with a histogram and its columns); this
handler returns only the data, ``<reportdata><days><elem>...`` one ``elem`` per local day,
oldest first, days without work as zeros so the chart's axis has no gaps.
"""

from __future__ import annotations

from lxml import etree

from . import backend
from .forms import format_day
from .protocol import PanelRequest
from .responses import Reply, base_doc, serialize

# column -> the metrics it adds up (service.DAILY_METRICS)
COLUMNS = (
    ("entities", ("contact", "company", "lead")),
    ("contacts", ("contact",)),
    ("companies", ("company",)),
    ("leads", ("lead",)),
    ("notes", ("note",)),
    ("tasks", ("task",)),
    ("failed", ("failed",)),
)


def report(request: PanelRequest) -> Reply:
    service = backend.service(request.lang)
    with backend.translated(request.lang):
        days = service.daily()
    doc = base_doc(request)
    band = etree.SubElement(etree.SubElement(doc, "reportdata"), "days")
    for day in days:
        elem = etree.SubElement(band, "elem")
        etree.SubElement(elem, "day").text = format_day(day.day, request.lang)
        for column, metrics in COLUMNS:
            etree.SubElement(elem, column).text = str(sum(day.counts.get(m, 0) for m in metrics))
    return Reply(serialize(doc), result="opened")
