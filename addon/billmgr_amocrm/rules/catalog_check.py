"""Check the config against what amoCRM actually has, before the panel saves it.

Pure: the caller fetches the catalogs (custom fields per entity, pipelines with
statuses, users) and passes them in. Each ``Issue`` points at the config path and
the rule it concerns, in Russian and English; :meth:`Issue.advice` says where it is,
what is wrong and what to fix, naming the rule. An empty list means amoCRM will
accept what the rules produce (as far as the catalog can tell). The panel checks a
rule when it is saved; ``amocrm check``, the status screen and the worker check the
whole config again, because amoCRM's catalog changes under it (a user deactivated, a
field or a pipeline deleted) and every record would then fail one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ..domain import Kind
from ..ports import JsonDict
from .config import SELECT_TYPES, FieldRule, ModuleConfig, PipelineRule

UNSORTED_STATUS_TYPE = 1
# Russian texts name amoCRM's entities and field types in Russian (genitive plural / type names).
ENTITY_OF_RU = {Kind.CONTACT: "контактов", Kind.COMPANY: "компаний", Kind.LEAD: "сделок"}
FIELD_TYPE_RU = {
    "text": "текст", "numeric": "число", "checkbox": "флажок", "select": "список",
    "multiselect": "мультисписок", "radiobutton": "переключатель", "date": "дата",
    "date_time": "дата и время", "birthday": "день рождения", "url": "ссылка",
    "textarea": "многострочный текст", "price": "цена", "monetary": "денежное", "streetaddress": "адрес",
    "smart_address": "адрес", "multitext": "телефон или email",
}


def _type_ru(field_type: object) -> str:
    return FIELD_TYPE_RU.get(str(field_type), str(field_type))


@dataclass(frozen=True)
class Issue:
    path: str                 # where in amocrm.conf, e.g. "pipelines.0.status_id"
    code: str                 # stable machine code, e.g. "status_not_in_pipeline"
    en: str
    ru: str
    rule_id: Optional[str] = None

    def message(self, lang: str = "en") -> str:
        return self.ru if lang == "ru" else self.en

    def advice(self, lang: str = "en") -> str:
        """"<where>: <what is wrong>. <what to fix>", the rule named."""
        section = self.path.split(".", 1)[0]
        where_en, where_ru = _WHERE.get(section, ("amocrm.conf", "amocrm.conf"))
        if self.rule_id:
            where_en, where_ru = f"{where_en} {self.rule_id}", f"{where_ru} {self.rule_id}"
        fix_en, fix_ru = _FIX.get(self.code, ("", ""))
        if lang == "ru":
            return f"{where_ru} ({self.path}): {self.ru}. {fix_ru}".rstrip()
        return f"{where_en} ({self.path}): {self.en}. {fix_en}".rstrip()


# Where an issue is, as the panel names it, and what fixes it.
_WHERE = {
    "pipelines": ("Pipeline rule", "Правило воронки"),
    "fields": ("Custom field rule", "Правило поля"),
    "sync": ("Sync settings", "Настройки синхронизации"),
    "renewals": ("Renewal task rule", "Правило задачи о продлении"),
}
_PICK_PIPELINE = ("Choose an existing pipeline and status in the rule, or delete the rule.",
                  "Выберите в правиле существующие воронку и этап или удалите правило.")
_PICK_FIELD = ("Choose an existing field in the rule, or delete the rule.",
               "Выберите в правиле существующее поле или удалите правило.")
_FIX = {
    "pipeline_missing": _PICK_PIPELINE,
    "pipeline_archived": ("Choose an active pipeline in the rule, or delete the rule.",
                          "Выберите в правиле действующую воронку или удалите правило."),
    "status_not_in_pipeline": _PICK_PIPELINE,
    "status_unsorted": ("", ""),      # the message says it already
    "field_missing": _PICK_FIELD,
    "field_type_mismatch": _PICK_FIELD,
    "option_missing": ("Map the value to an existing option of the field in the rule.",
                       "Сопоставьте значению существующий вариант поля в правиле."),
    "marker_field_missing": (
        "Nothing to do: the worker makes the field anew at its next write of these entities, and "
        "the re-check that follows writes the marker back onto every entity it sent.",
        "Делать ничего не нужно: модуль создаст поле заново при следующей записи этих сущностей, "
        "а следующая за этим перепроверка вернёт метку на все отправленные сущности."),
    "url_field_missing": (
        "Nothing to do: the worker makes the field anew at its next write of these entities.",
        "Делать ничего не нужно: модуль создаст поле заново при следующей записи этих сущностей."),
    "user_missing": ("Choose an active amoCRM user as the responsible user, or leave it empty.",
                     "Выберите ответственным действующего пользователя amoCRM или оставьте поле пустым."),
    "user_inactive": ("Choose an active amoCRM user as the responsible user, or leave it empty.",
                      "Выберите ответственным действующего пользователя amoCRM или оставьте поле пустым."),
}


def _kind_key(key: Union[Kind, str]) -> Optional[Kind]:
    if isinstance(key, Kind):
        return key
    for kind in Kind:
        if key in (kind.value, kind.amo_entity):
            return kind
    return None


def _catalogs(custom_fields_by_entity: Mapping[Any, Sequence[JsonDict]]) -> Dict[Kind, Dict[int, JsonDict]]:
    result: Dict[Kind, Dict[int, JsonDict]] = {}
    for key, fields in custom_fields_by_entity.items():
        kind = _kind_key(key)
        if kind is not None:
            result[kind] = {f["id"]: f for f in fields if isinstance(f.get("id"), int)}
    return result


def _pipeline_issues(index: int, rule: PipelineRule, pipelines: Mapping[int, JsonDict]) -> List[Issue]:
    where = f"pipelines.{index}"
    pipeline = pipelines.get(rule.pipeline_id)
    if pipeline is None:
        return [Issue(f"{where}.pipeline_id", "pipeline_missing",
                      f"pipeline {rule.pipeline_id} does not exist in amoCRM",
                      f"воронки {rule.pipeline_id} нет в amoCRM", rule.id)]
    issues = []
    if pipeline.get("is_archive"):
        issues.append(Issue(f"{where}.pipeline_id", "pipeline_archived",
                            f"pipeline {rule.pipeline_id} is archived",
                            f"воронка {rule.pipeline_id} в архиве", rule.id))
    statuses = {s.get("id"): s for s in (pipeline.get("_embedded") or {}).get("statuses") or ()}
    status = statuses.get(rule.status_id)
    if status is None:
        issues.append(Issue(f"{where}.status_id", "status_not_in_pipeline",
                            f"status {rule.status_id} is not a status of pipeline {rule.pipeline_id}",
                            f"этап {rule.status_id} не принадлежит воронке {rule.pipeline_id}", rule.id))
    elif status.get("type") == UNSORTED_STATUS_TYPE:
        issues.append(Issue(f"{where}.status_id", "status_unsorted",
                            "the 'unsorted' status cannot be set through the API; choose another",
                            "этап «Неразобранное» нельзя назначить через API; выберите другой", rule.id))
    return issues


def _option_found(target: Union[int, str], enums: Sequence[JsonDict]) -> bool:
    if isinstance(target, int):
        return any(e.get("id") == target for e in enums)
    return any(str(e.get("value", "")).strip() == target.strip() for e in enums)


def _field_issues(index: int, rule: FieldRule, catalog: Optional[Dict[int, JsonDict]]) -> List[Issue]:
    if catalog is None:
        return []
    where = f"fields.{index}"
    field = catalog.get(rule.field_id)
    if field is None:
        return [Issue(f"{where}.field_id", "field_missing",
                      f"{Kind(rule.entity).amo_entity} have no custom field {rule.field_id}",
                      f"у {ENTITY_OF_RU[Kind(rule.entity)]} нет поля {rule.field_id}", rule.id)]
    actual = field.get("type")
    if actual != rule.field_type:
        return [Issue(f"{where}.field_type", "field_type_mismatch",
                      f"field {rule.field_id} is {actual}, the rule says {rule.field_type}",
                      f"поле {rule.field_id} имеет тип «{_type_ru(actual)}», а в правиле "
                      f"«{_type_ru(rule.field_type)}»", rule.id)]
    issues = []
    if rule.field_type in SELECT_TYPES:
        enums = field.get("enums") or []
        for key, target in rule.enum_map.items():
            if not _option_found(target, enums):
                issues.append(Issue(f"{where}.enum_map.{key}", "option_missing",
                                    f"field {rule.field_id} has no option {target!r}",
                                    f"в поле {rule.field_id} нет варианта «{target}»", rule.id))
    return issues


def _user_issues(user_id: Optional[int], users: Sequence[JsonDict], where: str = "sync.responsible_user_id",
                 rule_id: Optional[str] = None) -> List[Issue]:
    if user_id is None:
        return []
    user = next((u for u in users if u.get("id") == user_id), None)
    if user is None:
        return [Issue(where, "user_missing", f"amoCRM has no user {user_id}",
                      f"в amoCRM нет пользователя {user_id}", rule_id)]
    if (user.get("rights") or {}).get("is_active") is False:
        return [Issue(where, "user_inactive", f"amoCRM user {user_id} is deactivated",
                      f"пользователь amoCRM {user_id} отключён", rule_id)]
    return []


def check_against_catalog(config: ModuleConfig, custom_fields_by_entity: Mapping[Any, Sequence[JsonDict]],
                          pipelines: Sequence[JsonDict], users: Sequence[JsonDict]) -> List[Issue]:
    """Problems amoCRM would reject or silently misfile. Entities missing from
    ``custom_fields_by_entity`` (keyed by Kind, "lead" or "leads") are not checked."""
    catalogs = _catalogs(custom_fields_by_entity)
    by_id: Dict[int, JsonDict] = {p["id"]: p for p in pipelines if isinstance(p.get("id"), int)}
    issues: List[Issue] = []
    for index, rule in enumerate(config.pipelines):
        issues += _pipeline_issues(index, rule, by_id)
    for index, field in enumerate(config.fields):
        issues += _field_issues(index, field, catalogs.get(Kind(field.entity)))
    for kind, marker_id in config.sync.marker_field_ids.as_map().items():
        catalog = catalogs.get(kind)
        if catalog is not None and marker_id not in catalog:
            issues.append(Issue(f"sync.marker_field_ids.{kind.value}", "marker_field_missing",
                                f"the BILLmanager ID field {marker_id} is gone from {kind.amo_entity}",
                                f"поле «BILLmanager ID» {marker_id} удалено из {ENTITY_OF_RU[kind]}"))
    for kind, url_id in config.sync.url_field_ids.as_map().items():
        catalog = catalogs.get(kind)
        if catalog is not None and url_id not in catalog:   # every write of the kind would be refused
            issues.append(Issue(f"sync.url_field_ids.{kind.value}", "url_field_missing",
                                f"the BILLmanager link field {url_id} is gone from {kind.amo_entity}",
                                f"поле ссылки «BILLmanager» {url_id} удалено из {ENTITY_OF_RU[kind]}"))
    issues += _user_issues(config.sync.responsible_user_id, users)
    for index, renewal in enumerate(config.renewals):     # a task for a deactivated user goes unseen
        issues += _user_issues(renewal.responsible_user_id, users, f"renewals.{index}.responsible_user_id",
                               renewal.id)
    return issues
