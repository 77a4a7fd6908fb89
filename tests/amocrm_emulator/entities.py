"""Entity storage operations: apply validated writes, render read shapes, list and search.

Records are stored in read shape minus ``_links``/``_embedded``; keys starting
with ``_`` are internal (tag ids, search index) and never rendered.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Tuple

from . import seed
from .listing import bracket_values, first, to_int
from .state import State
from .validation import Plan, TagRef

RENDER_SKIP = ("_tags", "_search", "_search_pending", "_source")


class Store:
    """Entity operations over a :class:`State`; ``base`` is the emulator base URL for links."""

    def __init__(self, state: State, base: str) -> None:
        self.state = state
        self.base = base
        self._live_ids: Dict[str, Optional[List[int]]] = {t: None for t in state.entities}

    # --- writes -------------------------------------------------------------
    def create(self, entity: str, plan: Plan, now: float) -> Dict[str, Any]:
        state = self.state
        user = state.account["current_user_id"]
        stamp = int(now)
        record: Dict[str, Any] = {
            "id": state.new_id(entity),
            "name": "",
            "responsible_user_id": user,
            "group_id": 0,
            "created_by": user,
            "updated_by": user,
            "created_at": stamp,
            "updated_at": stamp,
            "closest_task_at": None,
            "is_deleted": False,
            "custom_fields_values": None,
            "account_id": state.account["id"],
            "_tags": [],
            "_search": "",
            "_search_pending": None,
        }
        if entity == "contacts":
            record.update({"first_name": "", "last_name": "", "is_unsorted": False})
        if entity == "leads":
            record.update(
                {
                    "price": 0,
                    "status_id": None,
                    "pipeline_id": None,
                    "loss_reason_id": None,
                    "closed_at": None,
                    "score": None,
                    "labor_cost": None,
                    "source_id": None,
                }
            )
        state.entities[entity][record["id"]] = record
        live = self._live_ids[entity]
        if live is not None:
            live.append(record["id"])
        self._apply(entity, record, plan, now, creating=True)
        for contact, is_main in plan.contacts:
            state.links.link_lead_contact(record["id"], contact, is_main)
        for company in plan.companies[-1:]:
            state.links.link_lead_company(record["id"], company)
        if plan.source is not None:
            record["_source"] = plan.source
        return record

    def update(self, entity: str, plan: Plan, now: float) -> Dict[str, Any]:
        record = self.state.entities[entity][plan.entity_id]  # type: ignore[index]
        if not plan.skip:
            self._apply(entity, record, plan, now, creating=False)
        return record

    def _apply(self, entity: str, record: Dict[str, Any], plan: Plan, now: float, creating: bool) -> None:
        scalars = dict(plan.scalars)
        if entity == "leads" and "status_id" in scalars and scalars["status_id"] != record.get("status_id"):
            closing = scalars["status_id"] in (seed.WON_STATUS_ID, seed.LOST_STATUS_ID)
            scalars.setdefault("closed_at", int(now) if closing else None)
            if scalars["status_id"] != seed.LOST_STATUS_ID:
                scalars.setdefault("loss_reason_id", None)
        record.update(scalars)
        if entity == "contacts" and "name" not in scalars and ({"first_name", "last_name"} & scalars.keys()):
            record["name"] = " ".join(p for p in (record["first_name"], record["last_name"]) if p)
        if "updated_at" not in scalars:
            record["updated_at"] = (
                int(now) if not creating or "created_at" not in scalars else record["created_at"]
            )
        if "updated_by" not in scalars and not creating:
            record["updated_by"] = self.state.account["current_user_id"]
        if plan.custom_fields is not None:
            self._merge_custom_fields(entity, record, plan.custom_fields)
        self._apply_tags(entity, record, plan)
        self._reindex(record, now)

    def _merge_custom_fields(
        self, entity: str, record: Dict[str, Any], changes: Dict[int, Optional[List[Dict[str, Any]]]]
    ) -> None:
        # Values of a field are replaced wholesale; fields not mentioned keep theirs.
        current = {cf["field_id"]: cf for cf in record["custom_fields_values"] or []}
        for field_id, values in changes.items():
            if values is None:
                current.pop(field_id, None)
                continue
            cfield = self.state.custom_fields[entity][field_id]
            current[field_id] = {
                "field_id": field_id,
                "field_name": cfield["name"],
                "field_code": cfield["code"],
                "field_type": cfield["type"],
                "values": values,
            }
        record["custom_fields_values"] = list(current.values()) or None

    def _tag_ids(self, entity: str, refs: Iterable[TagRef], create: bool) -> List[int]:
        ids = []
        for kind, value in refs:
            if kind == "id":
                if value in self.state.tags[entity]:
                    ids.append(value)
            elif create:
                ids.append(self.state.ensure_tag(entity, value)["id"])
            else:
                tag = self.state.tag_by_name(entity, value)
                if tag is not None:
                    ids.append(tag["id"])
        return ids

    def _apply_tags(self, entity: str, record: Dict[str, Any], plan: Plan) -> None:
        if plan.tags_replace:  # _embedded.tags wins over tags_to_add/tags_to_delete
            record["_tags"] = list(dict.fromkeys(self._tag_ids(entity, plan.tags_set or [], create=True)))
            return
        tags: List[int] = list(record["_tags"])
        for tag_id in self._tag_ids(entity, plan.tags_add, create=True):
            if tag_id not in tags:
                tags.append(tag_id)
        removed = set(self._tag_ids(entity, plan.tags_delete, create=False))
        record["_tags"] = [t for t in tags if t not in removed]

    def _reindex(self, record: Dict[str, Any], now: float) -> None:
        parts = [record.get("name") or "", record.get("first_name") or "", record.get("last_name") or ""]
        for cf in record["custom_fields_values"] or []:
            for value in cf["values"]:
                parts.append(str(value.get("value")))
        text = "\n".join(parts).lower()
        lag = self.state.search_lag
        if lag > 0:
            record["_search_pending"] = [text, now + lag]
        else:
            record["_search"], record["_search_pending"] = text, None

    def edit_by_hand(self, entity: str, entity_id: int, field_id: int, value: Any, now: float) -> str:
        """A person sets a custom field's value in the UI; the reason it is refused, else ''.

        An API-only field (``is_api_only``) cannot be changed in the UI: only integrations
        write it."""
        record = self.state.live(entity, entity_id)
        cfield = self.state.custom_fields[entity].get(field_id)
        if record is None or cfield is None:
            return f"no {entity} {entity_id} or field {field_id}"
        if cfield["is_api_only"]:
            return f"field {field_id} ({cfield['name']}) can be changed through the API only"
        values = [{"value": value}] if value is not None else None
        self._merge_custom_fields(entity, record, {field_id: values})
        record["updated_at"] = int(now)
        self._reindex(record, now)
        return ""

    def mark_deleted(self, entity: str, entity_id: int) -> bool:
        record = self.state.entities[entity].get(entity_id)
        if record is None:
            return False
        record["is_deleted"] = True
        self._live_ids[entity] = None
        return True

    def invalidate(self) -> None:
        self._live_ids = {t: None for t in self.state.entities}

    # --- reads -------------------------------------------------------------
    def search_text(self, record: Dict[str, Any], now: float) -> str:
        pending = record.get("_search_pending")
        if pending and pending[1] <= now:
            record["_search"], record["_search_pending"] = pending[0], None
        return str(record.get("_search") or "")

    def live_ids(self, entity: str) -> List[int]:
        ids = self._live_ids[entity]
        if ids is None:
            ids = [i for i, r in self.state.entities[entity].items() if not r["is_deleted"]]
            self._live_ids[entity] = ids
        return ids

    def self_link(self, entity: str, entity_id: int) -> Dict[str, Any]:
        return {"self": {"href": f"{self.base}/api/v4/{entity}/{entity_id}"}}

    def render(self, entity: str, record: Dict[str, Any], with_: Iterable[str]) -> Dict[str, Any]:
        state = self.state
        links = state.links
        out = {k: v for k, v in record.items() if k not in RENDER_SKIP}
        out["_links"] = self.self_link(entity, record["id"])
        tags = [state.tags[entity][t] for t in record["_tags"] if t in state.tags[entity]]
        embedded: Dict[str, Any] = {"tags": [dict(t) for t in tags]}
        rid = record["id"]
        wanted = set(with_)
        if entity == "contacts":
            company = links.contact_company.get(rid)
            embedded["companies"] = self._refs("companies", [company] if company else [])
            if "leads" in wanted:
                embedded["leads"] = self._refs("leads", sorted(links.contact_leads.get(rid, ())))
        elif entity == "companies":
            if "contacts" in wanted:
                embedded["contacts"] = self._refs("contacts", sorted(links.company_contacts.get(rid, ())))
            if "leads" in wanted:
                embedded["leads"] = self._refs("leads", sorted(links.company_leads.get(rid, ())))
        else:
            company = links.lead_company.get(rid)
            embedded["companies"] = self._refs("companies", [company] if company else [])
            if "contacts" in wanted:
                contacts = links.lead_contacts.get(rid, {})
                embedded["contacts"] = [
                    {"id": c, "is_main": contacts[c], "_links": self.self_link("contacts", c)}
                    for c in contacts
                    if state.live("contacts", c)
                ]
            if "loss_reason" in wanted and record.get("loss_reason_id"):
                embedded["loss_reason"] = [state.loss_reasons[record["loss_reason_id"]]]
            if "source" in wanted and record.get("_source"):
                embedded["source"] = record["_source"]
        out["_embedded"] = embedded
        return out

    def _refs(self, entity: str, ids: Iterable[int]) -> List[Dict[str, Any]]:
        return [{"id": i, "_links": self.self_link(entity, i)} for i in ids if self.state.live(entity, i)]

    def select(
        self, entity: str, params: Dict[str, List[str]], with_: List[str], now: float
    ) -> List[Dict[str, Any]]:
        """All records matching the list filters, in the requested order."""
        table = self.state.entities[entity]
        only_deleted = entity == "leads" and "only_deleted" in with_  # restorable leads only
        ids = bracket_values(params, "filter[id]")
        order_field, descending = "id", False
        for key in ("id", "created_at", "updated_at"):
            value = first(params, f"order[{key}]")
            if value:
                order_field, descending = key, value.lower() == "desc"
        ranges: List[Tuple[str, Optional[int], Optional[int]]] = []
        for key in ("created_at", "updated_at"):
            low, high = (
                to_int(first(params, f"filter[{key}][from]")),
                to_int(first(params, f"filter[{key}][to]")),
            )
            if low is not None or high is not None:
                ranges.append((key, low, high))
        query = (first(params, "query") or "").strip().lower()
        if ids:
            wanted = sorted({int(i) for i in ids if i.strip().lstrip("-").isdigit()})
            records = [table[i] for i in wanted if i in table]
        elif only_deleted:
            records = [r for r in table.values() if r["is_deleted"]]
        else:
            if not ranges and not query and order_field == "id":
                live = self.live_ids(entity)
                ordered = reversed(live) if descending else live
                return [table[i] for i in ordered]
            records = list(table.values())
        result = []
        for record in records:
            if record["is_deleted"] != only_deleted:
                continue
            if any(
                (lo is not None and record[k] < lo) or (hi is not None and record[k] > hi)
                for k, lo, hi in ranges
            ):
                continue
            if query and query not in self.search_text(record, now):
                continue
            result.append(record)
        if order_field != "id" or descending:
            result.sort(key=lambda r: (r[order_field], r["id"]), reverse=descending)
        return result

    # --- links -------------------------------------------------------------
    LINKABLE = {
        ("leads", "contacts"),
        ("leads", "companies"),
        ("contacts", "companies"),
        ("contacts", "leads"),
        ("companies", "contacts"),
        ("companies", "leads"),
    }

    def link(self, etype: str, eid: int, ttype: str, tid: int, metadata: Any) -> Dict[str, Any]:
        links = self.state.links
        main = bool(isinstance(metadata, dict) and metadata.get("is_main"))
        if {etype, ttype} == {"leads", "contacts"}:
            lead, contact = (eid, tid) if etype == "leads" else (tid, eid)
            links.link_lead_contact(lead, contact, main)
            metadata = {"is_main": links.lead_contacts[lead][contact]}
        elif {etype, ttype} == {"leads", "companies"}:
            lead, company = (eid, tid) if etype == "leads" else (tid, eid)
            links.link_lead_company(lead, company)
            metadata = None
        else:
            contact, company = (eid, tid) if etype == "contacts" else (tid, eid)
            links.link_contact_company(contact, company)
            metadata = None
        return {
            "entity_id": eid,
            "entity_type": etype,
            "to_entity_id": tid,
            "to_entity_type": ttype,
            "metadata": metadata,
        }

    def linked(self, etype: str, eid: int, ttype: str, tid: int) -> bool:
        """The relation exists (whether or not either end was deleted in the UI)."""
        links = self.state.links
        if {etype, ttype} == {"leads", "contacts"}:
            lead, contact = (eid, tid) if etype == "leads" else (tid, eid)
            return contact in links.lead_contacts.get(lead, {})
        if {etype, ttype} == {"leads", "companies"}:
            lead, company = (eid, tid) if etype == "leads" else (tid, eid)
            return links.lead_company.get(lead) == company
        if {etype, ttype} == {"contacts", "companies"}:
            contact, company = (eid, tid) if etype == "contacts" else (tid, eid)
            return links.contact_company.get(contact) == company
        return False

    def unlink(self, etype: str, eid: int, ttype: str, tid: int) -> None:
        links = self.state.links
        if {etype, ttype} == {"leads", "contacts"}:
            lead, contact = (eid, tid) if etype == "leads" else (tid, eid)
            links.unlink_lead_contact(lead, contact)
        elif {etype, ttype} == {"leads", "companies"}:
            lead, company = (eid, tid) if etype == "leads" else (tid, eid)
            links.unlink_lead_company(lead, company)
        else:
            contact, company = (eid, tid) if etype == "contacts" else (tid, eid)
            links.unlink_contact_company(contact, company)

    def links_of(self, etype: str, eid: int) -> List[Dict[str, Any]]:
        links = self.state.links
        found: List[Tuple[str, int, Any]] = []
        if etype == "leads":
            found += [("contacts", c, {"is_main": m}) for c, m in links.lead_contacts.get(eid, {}).items()]
            if eid in links.lead_company:
                found.append(("companies", links.lead_company[eid], None))
        elif etype == "contacts":
            if eid in links.contact_company:
                found.append(("companies", links.contact_company[eid], None))
            found += [("leads", lead, None) for lead in sorted(links.contact_leads.get(eid, ()))]
        else:
            found += [("contacts", c, None) for c in sorted(links.company_contacts.get(eid, ()))]
            found += [("leads", lead, None) for lead in sorted(links.company_leads.get(eid, ()))]
        return [
            {
                "entity_id": eid,
                "entity_type": etype,
                "to_entity_id": tid,
                "to_entity_type": ttype,
                "metadata": meta,
            }
            for ttype, tid, meta in found
            if self.state.live(ttype, tid)
        ]
