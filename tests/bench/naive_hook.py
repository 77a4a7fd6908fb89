#!/usr/bin/env python3
"""What a naive module ships as its event hook: sync work inside the panel's request.

It imports requests and PyMySQL, reads the service from the database and creates
the lead in amoCRM before answering the panel. Only the benchmark runs it, to show
what the spool-only hook saves. Settings come from the JSON file in
``NAIVE_HOOK_CONFIG``: ``{"db": {host, port, user, password, database}, "url", "token"}``.
"""

import json
import os
import sys

import pymysql
import requests


def main() -> int:
    doc = sys.stdin.buffer.read()
    with open(os.environ["NAIVE_HOOK_CONFIG"], encoding="utf-8") as handle:
        config = json.load(handle)
    item = int(os.environ.get("PARAM_elid") or 0)  # noqa: SIM112 - the panel's spelling
    conn = pymysql.connect(charset="utf8mb4", **config["db"])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT i.id, i.account, i.cost, a.name FROM item i "
                        "JOIN account a ON a.id = i.account WHERE i.id = %s", (item,))
            row = cur.fetchone()
    finally:
        conn.close()
    if row is not None:
        lead = {"name": f"Услуга #{row[0]} ({row[3] or ''})"[:250], "price": int(row[2] or 0)}
        requests.post(config["url"] + "/api/v4/leads", json=[lead], timeout=10,
                      headers={"Authorization": "Bearer " + config["token"]})
    sys.stdout.buffer.write(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
