"""The sandbox schema loads and has the tables and columns the adapter reads."""

from __future__ import annotations

from tests.sandbox import load_schema, server_connection
from tests.sandbox.generate import schema_statements

EXPECTED = {
    "account": {"id", "name", "country", "registration_date"},
    "account2project": {"account", "project"},
    "user": {"id", "account", "name", "realname", "email", "phone", "enabled"},
    "profile": {"id", "account", "name", "profiletype", "person", "vatnum", "kpp", "ogrn", "email",
                "phone", "country_legal", "address_legal", "country_physical", "address_physical"},
    "item": {"id", "pricelist", "account", "period", "currency", "status", "createdate", "opendate",
             "expiredate", "cost", "costperiod", "processingmodule", "parent", "autoprolong",
             "lastpricelist", "suspenddate", "remoteid", "specialstatus", "scheduledclose", "intvalue",
             "price", "name"},
    "itemparam": {"item", "intname", "value"},
    "pricelist": {"id", "itemtype", "intname", "parent", "compound", "active", "orderpriority", "project",
                  "name", "name_ru", "name_en"},
    "itemtype": {"id", "intname", "name", "name_ru", "name_en"},
    "currency": {"id", "name", "iso", "symbol", "code", "active"},
    "project": {"id", "name", "billurl"},
    "country": {"id", "name"},
    "paymethod": {"id", "name"},
    "payment": {"id", "account", "number", "paymethodamount", "currency", "paymethod", "status", "createdate",
                "paydate"},
    "payment2item": {"payment", "item"},
}


def test_schema_loads_with_every_table_innodb_utf8mb4(fresh_db):
    conn = server_connection(fresh_db, fresh_db.database)
    try:
        load_schema(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT table_name, engine, table_collation FROM information_schema.tables "
                        "WHERE table_schema = %s", (fresh_db.database,))
            tables = {name: (engine, collation) for name, engine, collation in cur.fetchall()}
            assert set(tables) == set(EXPECTED)
            for name, (engine, collation) in tables.items():
                assert engine == "InnoDB", name
                assert collation.startswith("utf8mb4"), name
            for table, columns in EXPECTED.items():
                cur.execute("SELECT column_name FROM information_schema.columns "
                            "WHERE table_schema = %s AND table_name = %s", (fresh_db.database, table))
                have = {r[0] for r in cur.fetchall()}
                assert columns <= have, (table, columns - have)
    finally:
        conn.close()


def test_every_schema_statement_is_a_create_table():
    statements = schema_statements()
    assert len(statements) == len(EXPECTED)
    assert all(s.startswith("CREATE TABLE ") for s in statements)
