"""The module's panel functions (Integration -> amoCRM), served by ``addon/amocrm_ui``.

``main.main()`` reads the request the panel hands a ``type="xml"`` handler (``PARAM_*``,
``AUTH_*``, the current document on stdin), dispatches on the function name and prints
the replacement document. Import nothing here: the handler imports lazily.
"""
