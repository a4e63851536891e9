"""The world's tables and keys, exactly as docs/sandbox-world.md lists them, plus the derived `crm`.

One definition drives the SQLite schema, the JSON Lines validation and the generator's column order.
"""

from __future__ import annotations

from dataclasses import dataclass

# Value types: how a key is checked and stored.
INT, REAL, TEXT, BOOL, INSTANT, DATE = "int", "real", "text", "bool", "instant", "date"
SQL_TYPES = {INT: "INTEGER", REAL: "REAL", TEXT: "TEXT", BOOL: "INTEGER", INSTANT: "TEXT", DATE: "TEXT"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = False
    default: object = None
    derived: bool = False  # written by the store (crm), not accepted from a world file


def _columns(spec: str) -> tuple[Column, ...]:
    """'id:int*, name:text*, active:bool=1' -> Columns (* = required, =value = default)."""
    columns = []
    for item in spec.split(","):
        item = item.strip()
        default: object = None
        if "=" in item:
            item, default_text = item.split("=", 1)
            default = int(default_text) if default_text.isdigit() else default_text
        name, kind = item.split(":")
        required = kind.endswith("*")
        columns.append(Column(name, kind.rstrip("*"), required, default))
    return tuple(columns)


STAMPS = _columns("created_at:instant, updated_at:instant, deleted:bool=0, deleted_at:instant")
CRM = (Column("crm", TEXT, derived=True),)

# table -> (own columns, whether it has created/updated/deleted stamps, whether `crm` is derived for it)
_TABLES: dict[str, tuple[str, bool, bool]] = {
    "teams": ("id:int*, name:text*, region:text, crm:text, manager_rep_id:int", True, False),
    "reps": ("id:int*, name:text*, email:text*, team_id:int, manager_id:int, region:text, timezone:text, "
             "active:bool=1, profile:text", True, True),
    "accounts": ("id:int*, name:text*, owner_rep_id:int, region:text, industry:text", True, True),
    "contacts": ("id:int*, account_id:int, owner_rep_id:int, first_name:text, last_name:text*, email:text, "
                 "lead_source:text, lifecycle_stage:text, mql_at:instant, sql_at:instant, customer_at:instant",
                 True, True),
    "leads": ("id:int*, owner_rep_id:int, first_name:text, last_name:text*, email:text, company:text, "
              "lead_source:text, status:text, mql_at:instant, sql_at:instant, converted_at:instant, "
              "converted_contact_id:int, converted_account_id:int, converted_opportunity_id:int", True, True),
    "pipelines": ("id:int*, name:text*, display_order:int", True, False),
    "stages": ("id:int*, pipeline_id:int*, name:text*, sort_order:int*, probability:real, is_closed:bool=0, "
               "is_won:bool=0, forecast_category:text", True, False),
    "products": ("id:int*, name:text*, sku:text, family:text, list_price:real, unit_cost:real, currency:text",
                 True, False),
    "opportunities": ("id:int*, name:text*, account_id:int, owner_rep_id:int, pipeline_id:int*, stage_id:int*, "
                      "amount:real, currency:text, amount_home:real, probability:real, forecast_category:text, "
                      "deal_type:text, lead_source:text, close_date:date, is_closed:bool=0, is_won:bool=0",
                      True, True),
    "line_items": ("id:int*, opportunity_id:int*, product_id:int, quantity:real, list_price:real, "
                   "unit_price:real, discount_pct:real, total_price:real, currency:text, "
                   "recurring_term_months:int, billing_frequency:text", True, True),
    "stage_history": ("id:int*, opportunity_id:int*, stage_id:int*, amount:real, probability:real, "
                      "close_date:date, entered_at:instant*", True, True),
    "activities": ("id:int*, kind:text*, subtype:text, subject:text, status:text, direction:text, "
                   "owner_rep_id:int, occurred_at:instant, lead_id:int, contact_id:int, opportunity_id:int, "
                   "account_id:int, duration_seconds:int, outcome:text", True, True),
    "contracts": ("id:int*, account_id:int*, opportunity_id:int, start_date:date*, end_date:date, "
                  "term_months:int, status:text, monthly_value:real, currency:text", True, True),
    "currency_rates": ("id:int*, iso_code:text*, rate:real*, start_date:date, is_corporate:bool=0", False, False),
}

WORLD_COLUMNS = _columns("seed:int, size:text, home_currency:text=USD, timezone:text=UTC, now:instant")


def _build() -> dict[str, tuple[Column, ...]]:
    tables: dict[str, tuple[Column, ...]] = {}
    for table, (spec, stamped, derived_crm) in _TABLES.items():
        tables[table] = _columns(spec) + (STAMPS if stamped else ()) + (CRM if derived_crm else ())
    return tables


TABLES: dict[str, tuple[Column, ...]] = _build()
# Load order: a table comes after the tables its keys refer to (so `crm` can be derived in one pass).
TABLE_ORDER: tuple[str, ...] = ("teams", "reps", "accounts", "contacts", "leads", "pipelines", "stages",
                                "products", "opportunities", "line_items", "stage_history", "activities",
                                "contracts", "currency_rates")
# Tables served by both CRMs when split; all others have a `crm` column.
SHARED_TABLES = frozenset({"pipelines", "stages", "products", "currency_rates"})
# Tables that carry money in a `currency` (default: the world's home currency).
CURRENCY_TABLES = frozenset({"products", "opportunities", "line_items", "contracts"})

# Foreign keys worth an index when serving (parent lookups, child lists, associations).
FOREIGN_KEYS: dict[str, tuple[str, ...]] = {
    "reps": ("team_id", "manager_id"),
    "accounts": ("owner_rep_id",),
    "contacts": ("account_id", "owner_rep_id"),
    "leads": ("owner_rep_id", "converted_opportunity_id"),
    "stages": ("pipeline_id",),
    "opportunities": ("account_id", "owner_rep_id", "stage_id"),
    "line_items": ("opportunity_id",),
    "stage_history": ("opportunity_id",),
    "activities": ("owner_rep_id", "opportunity_id", "contact_id", "account_id", "lead_id"),
    "contracts": ("account_id", "opportunity_id"),
}


def column_names(table: str) -> list[str]:
    return [column.name for column in TABLES[table]]


def schema_sql() -> list[str]:
    statements = ["CREATE TABLE IF NOT EXISTS world (" + ", ".join(
        f"{column.name} {SQL_TYPES[column.type]}" for column in WORLD_COLUMNS) + ")"]
    for table in TABLE_ORDER:
        parts = []
        for column in TABLES[table]:
            part = f"{column.name} {SQL_TYPES[column.type]}"
            if column.name == "id":
                part += " PRIMARY KEY"
            elif column.required:
                part += " NOT NULL"
            parts.append(part)
        statements.append(f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(parts)})")
    return statements


def index_sql() -> list[str]:
    statements = []
    for table in TABLE_ORDER:
        names = column_names(table)
        if "updated_at" in names:
            statements.append(f"CREATE INDEX IF NOT EXISTS ix_{table}_updated ON {table} (updated_at, id)")
            statements.append(f"CREATE INDEX IF NOT EXISTS ix_{table}_created ON {table} (created_at, id)")
        if "crm" in names:
            statements.append(f"CREATE INDEX IF NOT EXISTS ix_{table}_crm ON {table} (crm, updated_at, id)")
        for key in FOREIGN_KEYS.get(table, ()):
            statements.append(f"CREATE INDEX IF NOT EXISTS ix_{table}_{key} ON {table} ({key})")
        if "deleted" in names:
            # id-ordered pages of live records (HubSpot search by id, Salesforce ORDER BY Id) and the `total`
            # HubSpot counts for every search page: without it each count walked every later row
            kind = "kind, " if table == "activities" else ""
            statements.append(f"CREATE INDEX IF NOT EXISTS ix_{table}_live ON {table} ({kind}deleted, id)")
        if table == "activities":
            # A search of one engagement type by modification stamp, and the `total` counted for each of its
            # pages: with only the two indexes above the planner counted every call (or email) through
            # (kind, deleted), 90 ms a page of a 500k-activity world, most of an incremental sync's wait
            statements.append("CREATE INDEX IF NOT EXISTS ix_activities_kind_updated ON activities "
                              "(kind, updated_at, id)")
    return statements
