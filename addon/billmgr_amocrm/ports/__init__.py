"""The seams between the sync core and its adapters, one file per contract.

The worker and the services code against these Protocols only; each adapter
implements one of them (and may add methods), and ``tests`` provides fakes. The
docstrings are the contract: an implementation that deviates is a bug in it.

    AmoApi         ports/amocrm.py   amocrm/   the amoCRM REST client (HTTP, OAuth, rate limit)
    BillingReader  ports/billing.py  billing/  reads BILLmanager's tables (the only SQL on them)
    Store, Lease   ports/store.py    store/    the module's own tables: queue, links, sync state
    RuleSet        ports/rules.py    rules/    amocrm.conf + presets -> conditions and payloads
"""

from .amocrm import AmoApi, BatchOutcome, JsonDict
from .billing import BillingReader
from .rules import AmoPayload, MappingContext, RuleSet
from .store import EngineHolder, ExportProgress, Lease, QueueItem, Store

__all__ = [
    "AmoApi", "AmoPayload", "BatchOutcome", "BillingReader", "EngineHolder", "ExportProgress",
    "JsonDict", "Lease", "MappingContext", "QueueItem", "RuleSet", "Store",
]
