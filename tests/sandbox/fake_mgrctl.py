"""A stand-in for BILLmanager's ``sbin/mgrctl`` over a sandbox database, for tests and benchmarks.

    from tests.sandbox.fake_mgrctl import install_fake_mgrctl, calls
    install_fake_mgrctl(root, settings)            # <root>/sbin/mgrctl answers from the sandbox
    install_fake_mgrctl(root, settings, paramlist=other)   # paramlist names other credentials
    install_fake_mgrctl(root, settings, fault="garbage")   # exit | garbage | slow | refuse
    calls(root)                                    # every call so far: ["paramlist", "profile.edit elid=5"]

It answers what the module asks, in the shape BILLmanager's own mgrctl prints with
``-o xml`` (billmanager-plugin.md sections 7 and 12):

* ``paramlist``: ``<doc><elem><DBHost>…</DBHost>…</elem></doc>``;
* ``profile.edit elid=N``: the payer's form: its fields as the root's children (country
  fields hold the country's id), an ``<slist>`` of countries for each country field, the
  request echoed in ``<tparams>``; a payer that does not exist is ``<error type="missing">``.

Payers are read whole from the sandbox (``PROFILE_STORE`` behind a ``requisite_columns=False``
sandbox's view, else ``profile``), like the real panel reads its own tables. The installed
executable runs this file with the test interpreter; it imports only the standard library
and PyMySQL, so each call costs about what a small real one does (a process start and a
query). Its settings live beside it in ``sbin/.fake-mgrctl.json`` (0600).
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any, Dict, List
from xml.etree import ElementTree as ET  # noqa: N817 - writing only: the module under test parses

CONFIG_NAME = ".fake-mgrctl.json"
CALLS_NAME = "fake-mgrctl.calls"
FAULTS = ("exit", "garbage", "slow", "refuse")
PROFILE_FIELDS = ("name", "profiletype", "person", "vatnum", "kpp", "ogrn", "email", "phone",
                  "country_legal", "postcode_legal", "city_legal", "address_legal",
                  "country_physical", "postcode_physical", "city_physical", "address_physical")


def install_fake_mgrctl(root: Path, settings: Any, *, paramlist: Any = None, fault: str = "",
                        python: str = sys.executable) -> Path:
    """Write ``<root>/sbin/mgrctl`` (0755) answering from ``settings``' database (a ``DbSettings``)."""
    if fault and fault not in FAULTS:
        raise ValueError(f"fault must be one of {FAULTS}")
    sbin = root / "sbin"
    sbin.mkdir(parents=True, exist_ok=True)
    shown = paramlist if paramlist is not None else settings
    config = {
        "db": _settings_dict(settings),
        "paramlist": _settings_dict(shown),
        "fault": fault,
        "calls": str(root / "var" / CALLS_NAME),
    }
    conf = sbin / CONFIG_NAME
    conf.write_text(json.dumps(config), encoding="utf-8")
    conf.chmod(0o600)
    exe = sbin / "mgrctl"
    exe.write_text(f"#!{python}\nimport runpy\nrunpy.run_path({str(Path(__file__).resolve())!r}, "
                   f"init_globals={{'INSTALLED_CONFIG': {str(conf)!r}}}, run_name='__main__')\n",
                   encoding="utf-8")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return exe


def calls(root: Path) -> List[str]:
    """The calls answered so far, one ``"func key=value ..."`` each, oldest first."""
    path = root / "var" / CALLS_NAME
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def _settings_dict(settings: Any) -> Dict[str, Any]:
    return {"host": settings.host, "port": settings.port, "user": settings.user,
            "password": settings.password, "database": settings.database,
            "unix_socket": settings.unix_socket}


# --------------------------------------------------------------------------- the executable
def _doc(func: str, **attrs: str) -> ET.Element:
    return ET.Element("doc", {"lang": "ru", "func": func, "binary": "/billmgr", "host": "https://localhost",
                              "features": "8a6a7f1c", "level": "30", **attrs})


def _print(doc: ET.Element) -> None:
    sys.stdout.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    sys.stdout.write(ET.tostring(doc, encoding="unicode"))
    sys.stdout.write("\n")


def _paramlist(config: Dict[str, Any]) -> int:
    shown = config["paramlist"]
    doc = _doc("paramlist")
    elem = ET.SubElement(doc, "elem")
    names = (("DBHost", shown["host"]), ("DBPort", shown["port"]), ("DBUser", shown["user"]),
             ("DBPassword", shown["password"]), ("DBName", shown["database"]),
             ("DBSocket", shown.get("unix_socket") or ""))
    for name, value in names:
        ET.SubElement(elem, name).text = "" if value is None else str(value)
    _print(doc)
    return 0


def _connect(config: Dict[str, Any]) -> Any:
    import pymysql

    db = config["db"]
    return pymysql.connect(host=db["host"], port=int(db["port"]), user=db["user"], password=db["password"],
                           database=db["database"], unix_socket=db.get("unix_socket") or None,
                           charset="utf8mb4", autocommit=True)


def _profile(config: Dict[str, Any], params: Dict[str, str]) -> int:
    elid = params.get("elid", "")
    conn = _connect(config)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() "
                        "AND table_name = 'sandbox_profile_full'")
            table = "sandbox_profile_full" if cur.fetchone()[0] else "profile"
            row = None
            if elid.isdigit():
                cur.execute(f"SELECT {', '.join(PROFILE_FIELDS)} FROM {table} WHERE id = %s", (int(elid),))
                row = cur.fetchone()
            cur.execute("SELECT id, name FROM country ORDER BY id")
            countries = cur.fetchall()
    finally:
        conn.close()
    if row is None:
        doc = _doc("profile.edit")
        error = ET.SubElement(doc, "error", {"type": "missing", "object": "profile", "lang": "ru"})
        ET.SubElement(error, "param", {"name": "object", "type": "msg", "msg": "Плательщик"}).text = "profile"
        ET.SubElement(error, "param", {"name": "value"}).text = elid
        ET.SubElement(error, "msg").text = f"Плательщик с кодом «{elid}» не найден"
        _print(doc)
        return 1
    doc = _doc("profile.edit", elid=elid)
    ET.SubElement(doc, "elid").text = elid
    for name, value in zip(PROFILE_FIELDS, row):
        ET.SubElement(doc, name).text = "" if value is None else str(value)
    for name in ("country_legal", "country_physical"):
        slist = ET.SubElement(doc, "slist", {"name": name})
        for cid, cname in countries:
            ET.SubElement(slist, "val", {"key": str(cid)}).text = cname
    tparams = ET.SubElement(doc, "tparams")
    for key, value in params.items():
        ET.SubElement(tparams, key).text = value
    ET.SubElement(tparams, "func").text = "profile.edit"
    _print(doc)
    return 0


def main() -> int:
    """The installed ``sbin/mgrctl``: the executable hands this file its settings' path."""
    args = sys.argv[1:]
    config = json.loads(Path(globals()["INSTALLED_CONFIG"]).read_text(encoding="utf-8"))
    words = [a for i, a in enumerate(args)
             if not a.startswith("-") and (i == 0 or args[i - 1] not in ("-m", "-o"))]
    func = words[0] if words else ""
    params = dict(w.split("=", 1) for w in words[1:] if "=" in w)
    os.makedirs(os.path.dirname(config["calls"]), exist_ok=True)
    with open(config["calls"], "a", encoding="utf-8") as log:
        log.write(" ".join([func, *(f"{k}={v}" for k, v in params.items())]) + "\n")
    fault = config.get("fault", "")
    if fault == "exit":
        sys.stderr.write("mgrctl: cannot connect to the panel\n")
        return 2
    if fault == "garbage":
        sys.stdout.write("Segmentation fault DBPassword=leaked\n")
        return 0
    if fault == "slow":
        time.sleep(60)
    if fault == "refuse":
        doc = _doc(func)
        ET.SubElement(doc, "error", {"type": "access", "object": func})
        _print(doc)
        return 1
    if func == "paramlist":
        return _paramlist(config)
    if func == "profile.edit":
        return _profile(config, params)
    sys.stderr.write(f"fake mgrctl: {func!r} is not faked\n")
    return 2


if __name__ == "__main__":
    os.umask(0o077)
    sys.exit(main())
