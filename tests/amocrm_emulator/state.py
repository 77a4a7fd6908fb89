"""Everything the emulated account holds, as plain data.

The state is a set of dicts guarded by one lock held by the server; nothing here
locks. ``snapshot()`` gives the full JSON view (control API ``GET state`` and the
``--state-file``), ``State.restore()`` reads it back.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any, Dict, Iterable, List, Optional, Set

from . import seed

ENTITY_TYPES = ("contacts", "companies", "leads")
DEFAULT_REDIRECT_URI = "https://billing.example/amocrm/oauth"
DELETED_PATCH_MODES = ("validation", "errors", "ignore")


class Links:
    """Entity links: lead↔contact (with ``is_main``), lead→one company, contact→one company."""

    def __init__(self) -> None:
        self.lead_contacts: Dict[int, Dict[int, bool]] = {}
        self.contact_leads: Dict[int, Set[int]] = {}
        self.lead_company: Dict[int, int] = {}
        self.company_leads: Dict[int, Set[int]] = {}
        self.contact_company: Dict[int, int] = {}
        self.company_contacts: Dict[int, Set[int]] = {}

    def link_lead_contact(self, lead: int, contact: int, is_main: bool) -> None:
        contacts = self.lead_contacts.setdefault(lead, {})
        if is_main:
            for other in contacts:
                contacts[other] = False
            contacts[contact] = True
        elif contact not in contacts:
            # The first contact of a lead becomes its main contact.
            contacts[contact] = not any(contacts.values())
        self.contact_leads.setdefault(contact, set()).add(lead)

    def unlink_lead_contact(self, lead: int, contact: int) -> None:
        self.lead_contacts.get(lead, {}).pop(contact, None)
        self.contact_leads.get(contact, set()).discard(lead)

    def link_lead_company(self, lead: int, company: int) -> None:
        # A lead has one company: linking another replaces it.
        old = self.lead_company.get(lead)
        if old is not None:
            self.company_leads.get(old, set()).discard(lead)
        self.lead_company[lead] = company
        self.company_leads.setdefault(company, set()).add(lead)

    def unlink_lead_company(self, lead: int, company: int) -> None:
        if self.lead_company.get(lead) == company:
            del self.lead_company[lead]
            self.company_leads.get(company, set()).discard(lead)

    def link_contact_company(self, contact: int, company: int) -> None:
        # A contact belongs to at most one company: linking another replaces it.
        old = self.contact_company.get(contact)
        if old is not None:
            self.company_contacts.get(old, set()).discard(contact)
        self.contact_company[contact] = company
        self.company_contacts.setdefault(company, set()).add(contact)

    def unlink_contact_company(self, contact: int, company: int) -> None:
        if self.contact_company.get(contact) == company:
            del self.contact_company[contact]
            self.company_contacts.get(company, set()).discard(contact)

    def edges(self) -> List[Dict[str, Any]]:
        out: List[Dict[str, Any]] = []
        for lead, contacts in self.lead_contacts.items():
            for contact, is_main in contacts.items():
                out.append(
                    {
                        "entity_type": "leads",
                        "entity_id": lead,
                        "to_entity_type": "contacts",
                        "to_entity_id": contact,
                        "metadata": {"is_main": is_main},
                    }
                )
        for lead, company in self.lead_company.items():
            out.append(
                {
                    "entity_type": "leads",
                    "entity_id": lead,
                    "to_entity_type": "companies",
                    "to_entity_id": company,
                    "metadata": None,
                }
            )
        for contact, company in self.contact_company.items():
            out.append(
                {
                    "entity_type": "contacts",
                    "entity_id": contact,
                    "to_entity_type": "companies",
                    "to_entity_id": company,
                    "metadata": None,
                }
            )
        return out


class State:
    """The account: catalogs, entities, links, OAuth records and switches."""

    def __init__(self, subdomain: str = "demo") -> None:
        self.subdomain = subdomain
        self.next_ids: Dict[str, int] = dict(seed.FIRST_IDS)
        self.account: Dict[str, Any] = {
            "id": seed.ACCOUNT_ID,
            "name": f"Demo account {subdomain}",
            "subdomain": subdomain,
            "current_user_id": seed.ADMIN_USER_ID,
            "country": "RU",
            "currency": "RUB",
            "currency_symbol": "₽",
            "customers_mode": "disabled",
            "is_unsorted_on": True,
            "is_loss_reason_enabled": True,
            "is_helpbot_enabled": False,
            "is_technical_account": False,
            "contact_name_display_order": 1,
            "created_at": 1577836800,
        }
        self.users: Dict[int, Dict[str, Any]] = {u[0]: seed.user_record(*u) for u in seed.USERS}
        self.pipelines: Dict[int, Dict[str, Any]] = {p["id"]: p for p in seed.pipelines()}
        self.loss_reasons: Dict[int, Dict[str, Any]] = {
            rid: {"id": rid, "name": name, "sort": n * 10, "created_at": 1577836800, "updated_at": 1577836800}
            for n, (rid, name) in enumerate(seed.LOSS_REASONS, start=1)
        }
        self.custom_fields: Dict[str, Dict[int, Dict[str, Any]]] = {t: {} for t in ENTITY_TYPES}
        self._code_index: Dict[str, Dict[str, Dict[str, Any]]] = {}
        self.tags: Dict[str, Dict[int, Dict[str, Any]]] = {t: {} for t in ENTITY_TYPES}
        self.entities: Dict[str, Dict[int, Dict[str, Any]]] = {t: {} for t in ENTITY_TYPES}
        self.links = Links()
        # Notes (of contacts, companies and leads) and tasks, by id: read shape minus _links,
        # plus internal keys starting with "_" (a note's entity type, a UI deletion).
        self.notes: Dict[int, Dict[str, Any]] = {}
        self.tasks: Dict[int, Dict[str, Any]] = {}
        self.task_types: Dict[int, Dict[str, Any]] = {t["id"]: dict(t) for t in seed.TASK_TYPES}
        self.integrations: Dict[str, Dict[str, Any]] = {}
        self.auth_codes: Dict[str, Dict[str, Any]] = {}
        self.refresh_tokens: Dict[str, Dict[str, Any]] = {}
        self.access_tokens: Dict[str, Dict[str, Any]] = {}
        self.jwt_key = secrets.token_hex(32)
        self.paid = True
        self.deleted_patch_mode = "validation"
        self.search_lag = 0.0
        for entity, specs in seed.custom_field_specs().items():
            for sort, (name, ftype, code, enums) in enumerate(specs, start=1):
                self.add_custom_field(
                    entity, name, ftype, code, enums, sort=sort * 2, predefined=code is not None
                )

    # --- ids and catalogs -------------------------------------------------
    def new_id(self, kind: str) -> int:
        value = self.next_ids[kind]
        self.next_ids[kind] = value + 3  # real ids are not dense
        return value

    def add_custom_field(
        self,
        entity: str,
        name: str,
        ftype: str,
        code: Optional[str],
        enums: Iterable[Any],
        sort: int = 500,
        predefined: bool = False,
        is_api_only: bool = False,
    ) -> Dict[str, Any]:
        enum_list: List[Dict[str, Any]] = []
        for n, item in enumerate(enums, start=1):
            if isinstance(item, tuple):
                value, ecode = item
            elif isinstance(item, dict):
                value, ecode = item.get("value"), item.get("code")
            else:
                value, ecode = item, None
            enum_list.append({"id": self.new_id("enum"), "value": value, "sort": n, "code": ecode})
        fid = self.new_id("custom_field")
        field = {
            "id": fid,
            "name": name,
            "type": ftype,
            "account_id": seed.ACCOUNT_ID,
            "code": code,
            "sort": sort,
            "is_api_only": is_api_only,
            "enums": enum_list or None,
            "group_id": None,
            "required_statuses": [],
            "is_deletable": not predefined,
            "is_predefined": predefined,
            "entity_type": entity,
            "remind": None,
        }
        self.custom_fields[entity][fid] = field
        self._code_index.pop(entity, None)
        return field

    def invalidate_field_codes(self, entity: str) -> None:
        """The catalog of an entity changed: rebuild the code index on the next lookup."""
        self._code_index.pop(entity, None)

    def field_by_code(self, entity: str, code: str) -> Optional[Dict[str, Any]]:
        index = self._code_index.get(entity)
        if index is None:
            index = {f["code"]: f for f in self.custom_fields[entity].values() if f["code"]}
            self._code_index[entity] = index
        return index.get(code)

    def tag_by_name(self, entity: str, name: str) -> Optional[Dict[str, Any]]:
        for tag in self.tags[entity].values():
            if tag["name"] == name:
                return tag
        return None

    def ensure_tag(self, entity: str, name: str, color: Optional[str] = None) -> Dict[str, Any]:
        tag = self.tag_by_name(entity, name)
        if tag is None:
            tag = {"id": self.new_id("tag"), "name": name, "color": color}
            self.tags[entity][tag["id"]] = tag
        return tag

    def status(self, pipeline_id: int, status_id: int) -> Optional[Dict[str, Any]]:
        pipeline = self.pipelines.get(pipeline_id)
        if pipeline is None:
            return None
        for status in pipeline["statuses"]:
            if status["id"] == status_id:
                return status
        return None

    def main_pipeline(self) -> Dict[str, Any]:
        for pipeline in self.pipelines.values():
            if pipeline["is_main"]:
                return pipeline
        return next(iter(self.pipelines.values()))

    @staticmethod
    def first_working_status(pipeline: Dict[str, Any]) -> int:
        for status in pipeline["statuses"]:
            if status["type"] == 0 and status["id"] not in (seed.WON_STATUS_ID, seed.LOST_STATUS_ID):
                return int(status["id"])
        raise ValueError("pipeline without a working status")

    def live(self, entity: str, entity_id: int) -> Optional[Dict[str, Any]]:
        record = self.entities[entity].get(entity_id)
        if record is None or record["is_deleted"]:
            return None
        return record

    def user_active(self, user_id: int) -> bool:
        user = self.users.get(user_id)
        return bool(user and user["rights"]["is_active"])

    # --- integrations -----------------------------------------------------
    def add_integration(
        self,
        redirect_uri: str = DEFAULT_REDIRECT_URI,
        client_id: Optional[str] = None,
        client_secret: Optional[str] = None,
    ) -> Dict[str, Any]:
        integration = {
            "client_id": client_id or str(uuid.uuid4()),
            "client_secret": client_secret or secrets.token_urlsafe(48),
            "redirect_uri": redirect_uri,
        }
        self.integrations[integration["client_id"]] = integration
        return integration

    # --- serialisation ------------------------------------------------------
    def snapshot(self) -> Dict[str, Any]:
        def by_id(table: Dict[int, Dict[str, Any]]) -> List[Dict[str, Any]]:
            return list(table.values())

        return {
            "subdomain": self.subdomain,
            "next_ids": dict(self.next_ids),
            "account": self.account,
            "users": by_id(self.users),
            "pipelines": by_id(self.pipelines),
            "loss_reasons": by_id(self.loss_reasons),
            "custom_fields": {t: by_id(v) for t, v in self.custom_fields.items()},
            "tags": {t: by_id(v) for t, v in self.tags.items()},
            "entities": {t: by_id(v) for t, v in self.entities.items()},
            "links": self.links.edges(),
            "notes": by_id(self.notes),
            "tasks": by_id(self.tasks),
            "task_types": by_id(self.task_types),
            "integrations": list(self.integrations.values()),
            "auth_codes": self.auth_codes,
            "refresh_tokens": self.refresh_tokens,
            "access_tokens": self.access_tokens,
            "jwt_key": self.jwt_key,
            "paid": self.paid,
            "deleted_patch_mode": self.deleted_patch_mode,
            "search_lag": self.search_lag,
        }

    @classmethod
    def restore(cls, data: Dict[str, Any]) -> State:
        state = cls(data["subdomain"])
        state.next_ids = dict(seed.FIRST_IDS, **data["next_ids"])  # files from before notes/tasks
        state.account = data["account"]
        state.users = {u["id"]: u for u in data["users"]}
        state.pipelines = {p["id"]: p for p in data["pipelines"]}
        state.loss_reasons = {r["id"]: r for r in data["loss_reasons"]}
        state.custom_fields = {t: {f["id"]: f for f in v} for t, v in data["custom_fields"].items()}
        state._code_index = {}
        state.tags = {t: {g["id"]: g for g in v} for t, v in data["tags"].items()}
        state.entities = {t: {e["id"]: e for e in v} for t, v in data["entities"].items()}
        state.notes = {n["id"]: n for n in data.get("notes", [])}
        state.tasks = {t["id"]: t for t in data.get("tasks", [])}
        state.task_types = {t["id"]: t for t in data.get("task_types", seed.TASK_TYPES)}
        state.links = Links()
        for edge in data["links"]:
            pair = (edge["entity_type"], edge["to_entity_type"])
            a, b = edge["entity_id"], edge["to_entity_id"]
            if pair == ("leads", "contacts"):
                state.links.link_lead_contact(a, b, bool((edge["metadata"] or {}).get("is_main")))
            elif pair == ("leads", "companies"):
                state.links.link_lead_company(a, b)
            else:
                state.links.link_contact_company(a, b)
        state.integrations = {i["client_id"]: i for i in data["integrations"]}
        state.auth_codes = data["auth_codes"]
        state.refresh_tokens = data["refresh_tokens"]
        state.access_tokens = data["access_tokens"]
        state.jwt_key = data["jwt_key"]
        state.paid = data["paid"]
        state.deleted_patch_mode = data["deleted_patch_mode"]
        state.search_lag = data["search_lag"]
        return state
