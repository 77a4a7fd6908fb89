"""amocrm.conf + presets -> conditions, tags, custom fields, pipelines and payloads.

Pure code: no network, no SQL, no files. The ``settings`` package reads the files
and hands their text over as ``jsontext.Document``; the path is one way:

    settings (read the files) -> presets, config_check (check) -> mapping (compile)

Modules:

    jsontext       a file's text -> JSON -> pydantic models, errors naming file and path
    presets        presets.default + presets.custom (values and validators)
    config         amocrm.conf as a pydantic tree; rebuild with changed sections
    config_check   amocrm.conf checked against the presets; the text a save writes
    attributes     Client/Payer/Service -> named attributes
    conditions     the nine operators
    contacts       phone and email normalisation
    fieldvalues    a value -> amoCRM custom-field values per field type
    mapping        RuleSet (ports.RuleSet): wants() and payload()
    catalog_check  config vs amoCRM's fields, pipelines and users
    editing        list/add/update/delete/move rules; describe_rule
"""
