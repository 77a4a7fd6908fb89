"""amocrm.conf + presets -> conditions, tags, custom fields, pipelines and payloads.

Pure code (no network, no SQL); file I/O only in ``load_config``/``save_config``/
``load_presets``. Modules:

    presets        presets.default + presets.custom (values and validators)
    config         amocrm.conf as a pydantic tree; load/save; checks against presets
    attributes     Client/Payer/Service -> named attributes
    conditions     the nine operators
    contacts       phone and email normalisation
    fieldvalues    a value -> amoCRM custom-field values per field type
    mapping        RuleSet (ports.RuleSet): wants() and payload()
    catalog_check  config vs amoCRM's fields, pipelines and users
    editing        list/add/update/delete/move rules; describe_rule
"""
