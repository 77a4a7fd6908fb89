"""billmgr-amocrm: one-way sync of BILLmanager clients, payers and services into amoCRM.

Keep this file free of imports: the panel event hook imports the package on the
panel's hot path, and every import here would be paid on every save.
"""

__version__ = "0.1.0"
