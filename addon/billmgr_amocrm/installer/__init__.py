"""Install, upgrade or remove billmgr-amocrm in a BILLmanager tree (``sbin/amocrm-install``).

    amocrm-install [--root /usr/local/mgr5] [--wheelhouse DIR]   install or upgrade in place
    amocrm-install --uninstall [--drop-data]                     remove the module
    R/lib/amocrm/amocrm-purge [--yes]                            left by an uninstall: remove the data

Python 3 standard library only: it runs before any virtualenv exists, so it imports
nothing but the standard library, ``billmgr_amocrm.foundation`` and its own modules
(tests/install/test_stdlib_only.py holds it to that).  It must be run as root (the
panel runs handlers as root and they must be owned by root).

What goes where (R = --root, default /usr/local/mgr5)
------------------------------------------------------
R/lib/amocrm/releases/<version>-<stamp>/   a private virtualenv per install: the pinned
                                          runtime dependencies (.packaging/requirements.lock, pip
                                          --require-hashes; offline from --wheelhouse, where pip
                                          itself runs from its wheel after its hash is checked)
                                          and the billmgr_amocrm package, installed as a wheel
                                          (non-editable) that this installer builds from the source
R/lib/amocrm/venv -> releases/<current>   a symlink, swapped atomically at the end of a good
                                          build; the previous release is kept for a rollback
R/lib/amocrm/install.json                 what was installed (used by upgrade and uninstall)
R/lib/amocrm/core/<release>/, core/current  what runs on the host's own Python, outside the
                                          venv (core.py): the package and pure PyMySQL, for the
                                          event hook and the purge
R/lib/amocrm/amocrm-purge                 drops the tables and removes etc/amocrm, var/amocrm and
                                          lib/amocrm (purge.py); kept by a plain uninstall
R/addon/<x>, R/sbin/<x>                   every executable file directly in the source's addon/
                                          and sbin/ (except amocrm-install), root, 0750; a Python
                                          shebang is rewritten to R/lib/amocrm/venv/bin/python3,
                                          except the hook amocrm_event's: the host's python3 with
                                          "-IS" (every save in the panel starts it; it needs only
                                          the stdlib and its modules in core/current).
R/addon/billmgr_amocrm                    a symlink to ../lib/amocrm/venv/pkg, which each release
                                          points at its site-packages/billmgr_amocrm: one copy of
                                          the code (byte-compiled by pip), found both through the
                                          venv and beside the executables (their sys.path[0]),
                                          and switched together with the venv in one rename.
R/etc/xml/billmgr_mod_amocrm.xml          the panel descriptor (if the source has it), 0644
R/etc/amocrm/                             0700; presets.default always refreshed; amocrm.conf
                                          created from amocrm.conf.default only when absent;
                                          amocrm.conf, presets.custom, tokens never overwritten;
                                          every file there tightened to 0600
R/var/amocrm/                             0700, the worker's state (spool, locks)
worker schedule                           systemd unit amocrm-task.service (real root with
                                          systemd running, or --systemd-dir) or the cron entry
                                          amocrm-task (real root without systemd, or --cron-dir);
                                          skipped with a message for any other root
database                                  python -m billmgr_amocrm.store.migrations through the
                                          new venv, credentials from R/etc/billmgr.conf.d/db.conf

Upgrade = running the install again: a new release is built and migrated beside the
running one and only then switched to, so a failure leaves the previous install working.
Config, tokens, link tables and queued data are kept.

--uninstall removes the executables, descriptor, virtualenvs and schedule and restarts the
panel; it keeps etc/amocrm, var/amocrm, the tables and R/lib/amocrm/amocrm-purge (with the
core copy it runs from) unless --drop-data is given, which drops exactly the tables the
migrations list as the module's (``MODULE_TABLES``, through ``python -m
billmgr_amocrm.store.migrations --drop`` run from the core copy), never tables found by a
name prefix, and removes etc/amocrm, var/amocrm and R/lib/amocrm.

The modules, one job each
-------------------------
    cli          the command line: arguments, the root check, errors -> exit status
    install      the install/upgrade sequence
    uninstall    the uninstall sequence
    layout       every path written under R, the install manifest, the install lock
    source       the source tree: version, dependencies, executables
    wheel        the pure-Python wheel of billmgr_amocrm, built with the standard library
    release      a release's virtualenv: build, switch, prune
    lock         requirements.lock: pins, hashes, the wheel list; pip's wheel, checked
    core         what runs on the host's Python outside the venv: the interpreter, the copy
    purge        removing the data: what goes, the drop, the command left behind
    database     the migrations (through a release's python) and the table drop (the core copy)
    config       R/etc/amocrm and R/var/amocrm: defaults, private modes
    executables  handlers and tools with rewritten shebangs, the package link, the descriptor
    schedule     the worker's systemd unit or cron entry
    panel        restarting BILLmanager so it re-reads descriptors and handlers
    system       what every step uses: run a command, write or remove a file, the report
"""
