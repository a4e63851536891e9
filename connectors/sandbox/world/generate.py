"""The deterministic world generator: realistic CRM data from a seed and a size, streamed into SQLite.

Same seed, size and `now` give a byte-identical world file. Records are made one account at a time (the
account, its contacts, its deals with their line items, stage history, activities, contracts, renewals and
the leads that turned into them) and written in batches with `executemany`; only the small reference tables
(teams, reps, stages, products, rates) stay in memory, so a world of 1,000,000 opportunities and 5,000,000
activities is made with flat memory.

What makes it realistic (and testable): teams with regions, each on one CRM; reps with a recorded
`profile` — `balanced`, `low_activity` (few activities), `ineffective` (normal activity volume, few
meetings and wins), `star`; lead sources; leads that convert; deals that move through stages with stage
history ending in their current stage; discounts; recurring line items that start contracts, renewals and
churn; a second currency with dated rates; inactive reps, unowned and deleted records.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import random
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.sandbox.world.schema import column_names, index_sql
from connectors.sandbox.world.store import World, format_instant

SIZES: dict[str, int] = {"tiny": 12, "small": 2_000, "medium": 50_000, "large": 1_000_000}
ACTIVITIES_PER_OPPORTUNITY = 5  # the world's total: 5,000,000 activities for 1,000,000 opportunities
HISTORY_DAYS = 730  # the world's records span the two years before `now`
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
FOLD_MS = 3 * 86_400_000  # where last-modified instants past `now` are folded back to (see Clock.last_modified)
MINUTE_MS = 60_000
BATCH_ROWS = 5_000

PROFILES = ("balanced", "low_activity", "ineffective", "star")
# Profile of rep number i: cycles through this pattern (60% balanced, 15% low, 15% ineffective, 10% star);
# it starts with one of each so that even the tiny world has every profile.
PROFILE_PATTERN = ("balanced", "low_activity", "ineffective", "star", "balanced", "balanced", "balanced",
                   "ineffective", "balanced", "low_activity", "balanced", "balanced", "star", "balanced",
                   "ineffective", "balanced", "low_activity", "balanced", "balanced", "balanced")


@dataclass(frozen=True)
class Behaviour:
    """How a profile sells: deal share, activity volume and mix, conversion."""

    deal_weight: float  # relative share of the deals
    activity_factor: float  # activities per deal, relative to a balanced rep
    meeting_share: float  # share of activities that are meetings
    meeting_held: float  # share of past meetings that are held (not cancelled / no-show)
    win_rate: float  # of closed new-business deals
    churn_rate: float  # of renewals
    max_discount: int  # largest discount the rep gives, in %
    first_response_minutes: tuple[int, int]  # how fast the rep answers a new lead


BEHAVIOURS: dict[str, Behaviour] = {
    "balanced": Behaviour(1.0, 1.0, 0.14, 0.85, 0.30, 0.15, 20, (2, 240)),
    "low_activity": Behaviour(0.8, 0.25, 0.14, 0.85, 0.22, 0.22, 20, (60, 2880)),
    "ineffective": Behaviour(1.0, 1.1, 0.03, 0.55, 0.10, 0.35, 30, (2, 240)),
    "star": Behaviour(1.4, 1.3, 0.20, 0.95, 0.50, 0.07, 10, (1, 30)),
}


@dataclass(frozen=True)
class Region:
    name: str
    timezone: str
    utc_offset_hours: int  # for working hours; daylight saving is ignored
    foreign_currency_share: float  # share of its accounts that buy in the second currency


REGIONS = (
    Region("NA East", "America/New_York", -5, 0.0),
    Region("EMEA", "Europe/Berlin", 1, 0.8),
    Region("NA West", "America/Los_Angeles", -8, 0.0),
    Region("APAC", "Asia/Singapore", 8, 0.1),
    Region("LATAM", "America/Sao_Paulo", -3, 0.0),
)
HOME_CURRENCY = "USD"
SECOND_CURRENCY = "EUR"
EUR_PER_USD = 0.92  # the corporate rate at `now`; dated rates drift around it

LEAD_SOURCES = ("Web", "Referral", "Partner", "Trade Show", "Outbound", "Advertisement", "Webinar")
LEAD_SOURCE_WEIGHTS = (30, 15, 10, 8, 20, 7, 10)
INDUSTRIES = ("Software", "Manufacturing", "Retail", "Finance", "Healthcare", "Education", "Logistics",
              "Energy", "Media", "Hospitality")
FIRST_NAMES = ("Ana", "Ben", "Chloe", "Dewi", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jia", "Kofi", "Lena",
               "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tari", "Umar", "Vera", "Wen",
               "Xavi", "Yuki", "Zara", "Budi", "Sari", "Agus", "Putri")
LAST_NAMES = ("Abadi", "Becker", "Chen", "Diaz", "Evans", "Fischer", "Gupta", "Hughes", "Ito", "Jensen",
              "Kowalski", "Lopez", "Martin", "Nguyen", "Okafor", "Petrov", "Quispe", "Rossi", "Santoso",
              "Tanaka", "Usman", "Virtanen", "Wibowo", "Xu", "Yilmaz", "Zhou", "Hartono", "Silva")
COMPANY_WORDS = ("Acme", "Nusantara", "Blue", "Northwind", "Summit", "Harbor", "Vertex", "Lumen", "Orchid",
                 "Granite", "Pioneer", "Cedar", "Atlas", "Nova", "Sakura", "Delta", "Merapi", "Borealis")
COMPANY_KINDS = ("Systems", "Foods", "Logistics", "Labs", "Retail", "Energy", "Health", "Capital", "Media",
                 "Works", "Textiles", "Motors")

# (name, sku, family, list price in USD, unit cost, recurring: default term in months or 0 for one-off)
PRODUCTS = (
    ("Platform Standard (per seat)", "PLT-STD", "Subscription", 600.0, 90.0, 12),
    ("Platform Enterprise (per seat)", "PLT-ENT", "Subscription", 1200.0, 150.0, 12),
    ("Analytics Add-on", "ADD-ANL", "Subscription", 3000.0, 400.0, 12),
    ("Premium Support", "SUP-PRM", "Support", 4000.0, 1500.0, 12),
    ("Onboarding Package", "SRV-ONB", "Services", 5000.0, 2500.0, 0),
    ("Custom Integration", "SRV-INT", "Services", 12000.0, 7000.0, 0),
    ("Training Day", "SRV-TRN", "Services", 1500.0, 600.0, 0),
    ("Edge Gateway Device", "HW-GW", "Hardware", 800.0, 450.0, 0),
)
SUBSCRIPTION_PRODUCTS = (1, 2, 3)
ADD_ON_PRODUCTS = (3, 4, 7)
SERVICE_PRODUCTS = (5, 6, 7, 8)

# Pipelines and stages: (id, pipeline, name, order, probability, closed, won, forecast category)
PIPELINES = ((1, "New Business", 1), (2, "Renewals", 2))
STAGES = (
    (1, 1, "Prospecting", 1, 0.10, 0, 0, "Pipeline"),
    (2, 1, "Qualification", 2, 0.20, 0, 0, "Pipeline"),
    (3, 1, "Needs Analysis", 3, 0.35, 0, 0, "Pipeline"),
    (4, 1, "Proposal", 4, 0.55, 0, 0, "BestCase"),
    (5, 1, "Negotiation", 5, 0.80, 0, 0, "Commit"),
    (6, 1, "Closed Won", 6, 1.00, 1, 1, "Closed"),
    (7, 1, "Closed Lost", 7, 0.00, 1, 0, "Omitted"),
    (8, 2, "Renewal Due", 1, 0.60, 0, 0, "BestCase"),
    (9, 2, "Renewal Negotiation", 2, 0.85, 0, 0, "Commit"),
    (10, 2, "Renewed", 3, 1.00, 1, 1, "Closed"),
    (11, 2, "Churned", 4, 0.00, 1, 0, "Omitted"),
)
OPEN_STAGES = {1: (1, 2, 3, 4, 5), 2: (8, 9)}
WON_STAGE = {1: 6, 2: 10}
LOST_STAGE = {1: 7, 2: 11}
STAGE_BY_ID = {stage[0]: stage for stage in STAGES}

CALL_OUTCOMES = ("Connected", "Left voicemail", "No answer", "Busy")
CALL_OUTCOME_WEIGHTS = (45, 30, 20, 5)

# The columns each table is written with, in order (the tuples below follow them).
COLUMNS: dict[str, tuple[str, ...]] = {
    "teams": ("id", "name", "region", "crm", "manager_rep_id", "created_at", "updated_at", "deleted"),
    "reps": ("id", "name", "email", "team_id", "manager_id", "region", "timezone", "active", "profile",
             "created_at", "updated_at", "deleted", "crm"),
    "accounts": ("id", "name", "owner_rep_id", "region", "industry", "created_at", "updated_at", "deleted",
                 "deleted_at", "crm"),
    "contacts": ("id", "account_id", "owner_rep_id", "first_name", "last_name", "email", "lead_source",
                 "lifecycle_stage", "mql_at", "sql_at", "customer_at", "created_at", "updated_at", "deleted",
                 "deleted_at", "crm"),
    "leads": ("id", "owner_rep_id", "first_name", "last_name", "email", "company", "lead_source", "status",
              "mql_at", "sql_at", "converted_at", "converted_contact_id", "converted_account_id",
              "converted_opportunity_id", "created_at", "updated_at", "deleted", "deleted_at", "crm"),
    "pipelines": ("id", "name", "display_order", "created_at", "updated_at", "deleted"),
    "stages": ("id", "pipeline_id", "name", "sort_order", "probability", "is_closed", "is_won",
               "forecast_category", "created_at", "updated_at", "deleted"),
    "products": ("id", "name", "sku", "family", "list_price", "unit_cost", "currency", "created_at",
                 "updated_at", "deleted"),
    "opportunities": ("id", "name", "account_id", "owner_rep_id", "pipeline_id", "stage_id", "amount",
                      "currency", "amount_home", "probability", "forecast_category", "deal_type",
                      "lead_source", "close_date", "is_closed", "is_won", "created_at", "updated_at",
                      "deleted", "deleted_at", "crm"),
    "line_items": ("id", "opportunity_id", "product_id", "quantity", "list_price", "unit_price",
                   "discount_pct", "total_price", "currency", "recurring_term_months", "billing_frequency",
                   "created_at", "updated_at", "deleted", "deleted_at", "crm"),
    "stage_history": ("id", "opportunity_id", "stage_id", "amount", "probability", "close_date", "entered_at",
                      "created_at", "updated_at", "deleted", "crm"),
    "activities": ("id", "kind", "subtype", "subject", "status", "direction", "owner_rep_id", "occurred_at",
                   "lead_id", "contact_id", "opportunity_id", "account_id", "duration_seconds", "outcome",
                   "created_at", "updated_at", "deleted", "deleted_at", "crm"),
    "contracts": ("id", "account_id", "opportunity_id", "start_date", "end_date", "term_months", "status",
                  "monthly_value", "currency", "created_at", "updated_at", "deleted", "deleted_at", "crm"),
    "currency_rates": ("id", "iso_code", "rate", "start_date", "is_corporate"),
}


def size_to_opportunities(size: str | int) -> int:
    """The number of opportunities for a size name (tiny, small, medium, large) or a whole number."""
    if isinstance(size, bool):
        raise ValueError(f"world size {size!r}: use one of {', '.join(SIZES)} or a number of opportunities")
    if isinstance(size, int):
        if size < 1:
            raise ValueError(f"world size {size}: a world needs at least one opportunity")
        return size
    text = str(size).strip().lower().replace("_", "")
    if text.isdigit():
        return size_to_opportunities(int(text))
    if text not in SIZES:
        raise ValueError(f"world size {size!r}: use one of {', '.join(SIZES)} or a number of opportunities")
    return SIZES[text]


def default_now() -> dt.datetime:
    """Today 00:00 UTC: stable within a day, so a seed gives the same world all day long."""
    today = dt.datetime.now(dt.UTC).date()
    return dt.datetime(today.year, today.month, today.day, tzinfo=dt.UTC)


def generate_world(path: Path, *, seed: int, size: str | int, now: dt.datetime | None = None,
                   progress: Any = None) -> World:
    """Write a generated world to `path` (replacing a file there) and open it.

    progress: optional callable(opportunities_done: int) called after each batch (for benchmarks).
    """
    opportunities = size_to_opportunities(size)
    moment = (now or default_now()).astimezone(dt.UTC)
    path = Path(path)
    World.create(path, seed=seed, size=size, home_currency=HOME_CURRENCY, timezone="UTC",
                 now=format_instant(moment), indexes=False).close()
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        # Bulk load: no journal, no fsync, one transaction; the file is rebuilt from the seed if it breaks.
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-16384")  # 16 MB: inserts append, index sorts spill to disk
        connection.execute("PRAGMA temp_store=FILE")  # index sorts spill to disk: memory stays flat
        connection.execute("BEGIN")
        Generator(connection, seed, opportunities, moment, progress).run()
        connection.execute("COMMIT")
        connection.execute("BEGIN")
        for statement in index_sql():
            connection.execute(statement)
        connection.execute("COMMIT")
        connection.execute("ANALYZE")
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()
    return World.open(path)


class Clock:
    """Instants as integer milliseconds, written in the world's ISO form fast (days are cached)."""

    def __init__(self, now: dt.datetime) -> None:
        self.now_ms = int(now.timestamp() * 1000)
        self.start_ms = self.now_ms - HISTORY_DAYS * DAY_MS
        self._days: dict[int, str] = {}

    def day(self, ms: int) -> str:
        number = ms // DAY_MS
        text = self._days.get(number)
        if text is None:
            text = (dt.date(1970, 1, 1) + dt.timedelta(days=number)).isoformat()
            self._days[number] = text
        return text

    def instant(self, ms: int) -> str:
        rest = ms % DAY_MS
        return (f"{self.day(ms)}T{rest // HOUR_MS:02d}:{rest // MINUTE_MS % 60:02d}:"
                f"{rest // 1000 % 60:02d}.{rest % 1000:03d}Z")

    def add_months(self, day_ms: int, months: int) -> int:
        """The same day of the month `months` later (clamped to the month's end), at 00:00."""
        date = dt.date(1970, 1, 1) + dt.timedelta(days=day_ms // DAY_MS)
        year, month = divmod(date.month - 1 + months, 12)
        year += date.year
        month += 1
        last_day = [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30, 31, 30, 31,
                    31, 30, 31, 30, 31][month - 1]
        shifted = dt.date(year, month, min(date.day, last_day))
        return (shifted - dt.date(1970, 1, 1)).days * DAY_MS

    def last_modified(self, ms: int, floor_ms: int) -> int:
        """A last-modified instant before `now`, not before `floor_ms`.  One that would fall after `now` is
        folded back into the last three days rather than clamped to `now` - 1 ms: the clamp piled thousands
        of records onto that one instant, which no CRM has and which an incremental sync's overlap window
        then re-read in full (a tenth of a 100k world's "1 % changed" run)."""
        if ms < self.now_ms:
            return ms
        return max(floor_ms, self.now_ms - 1 - (ms - self.now_ms) % FOLD_MS)


@dataclass
class Rep:
    id: int
    team_id: int
    crm: str
    profile: str
    behaviour: Behaviour
    region: Region
    active: bool
    left_ms: int | None  # inactive reps own nothing created after they left


@dataclass
class AccountState:
    """What the generator keeps about the account being made (dropped when the next one starts)."""

    id: int
    name: str
    owner: Rep | None
    crm: str
    region: Region
    currency: str
    created_ms: int
    contacts: list[list[Any]] = field(default_factory=list)  # contact rows, finished at the end
    first_win_ms: int | None = None
    has_opportunity: bool = False


@dataclass(frozen=True)
class Contract:
    """A contract started by a won deal, until its renewal decides its status."""

    account_id: int
    opportunity_id: int
    start_ms: int
    end_ms: int
    term_months: int
    monthly_value: float
    currency: str
    crm: str
    items: list[tuple]  # the recurring line items a renewal carries on


class Writer:
    """Per-table row buffers flushed with executemany."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.buffers: dict[str, list[Sequence[Any]]] = {table: [] for table in COLUMNS}
        self.counts: dict[str, int] = dict.fromkeys(COLUMNS, 0)
        self.sql = {table: f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                           f"({', '.join('?' for _ in columns)})" for table, columns in COLUMNS.items()}
        for table, columns in COLUMNS.items():
            unknown = set(columns) - set(column_names(table))
            assert not unknown, f"generator writes unknown {table} columns {unknown}"

    def add(self, table: str, row: Sequence[Any]) -> None:
        buffer = self.buffers[table]
        buffer.append(row)
        if len(buffer) >= BATCH_ROWS:
            self.flush(table)

    def flush(self, table: str | None = None) -> None:
        for name in [table] if table else list(self.buffers):
            buffer = self.buffers[name]
            if buffer:
                self.connection.executemany(self.sql[name], buffer)
                self.counts[name] += len(buffer)
                buffer.clear()

    def next_id(self, table: str) -> int:
        return self.counts[table] + len(self.buffers[table]) + 1


class Generator:
    def __init__(self, connection: sqlite3.Connection, seed: int, opportunities: int, now: dt.datetime,
                 progress: Any = None) -> None:
        self.out = Writer(connection)
        self.seed = seed
        self.target_opportunities = opportunities
        self.clock = Clock(now)
        self.progress = progress
        self.rng = random.Random(f"{seed}:setup")
        self.reps: list[Rep] = []
        self.reps_by_team: dict[int, list[Rep]] = {}
        self.rates: list[tuple[int, float]] = []  # (start day ms, EUR per USD), ascending
        self.opportunities_made = 0
        self.activities_target = ACTIVITIES_PER_OPPORTUNITY * opportunities
        self.lead_source_cumulative = _cumulative(LEAD_SOURCE_WEIGHTS)
        self.call_outcome_cumulative = _cumulative(CALL_OUTCOME_WEIGHTS)

    # -- the whole world -----------------------------------------------------------------------------

    def run(self) -> None:
        self.make_reference_tables()
        self.make_teams_and_reps()
        self.make_accounts()
        self.make_open_leads()
        self.out.flush()

    def make_reference_tables(self) -> None:
        created = self.clock.instant(self.clock.start_ms - 30 * DAY_MS)
        for pipeline_id, name, order in PIPELINES:
            self.out.add("pipelines", (pipeline_id, name, order, created, created, 0))
        for stage in STAGES:
            self.out.add("stages", (*stage, created, created, 0))
        for number, (name, sku, family, price, cost, _term) in enumerate(PRODUCTS, start=1):
            self.out.add("products", (number, name, sku, family, price, cost, HOME_CURRENCY, created, created, 0))
        self.make_rates()

    def make_rates(self) -> None:
        """EUR per USD: a dated rate for each quarter of the span (drifting), and the current corporate one."""
        rng = random.Random(f"{self.seed}:rates")
        day = self.clock.start_ms - self.clock.start_ms % DAY_MS
        rate_id = 1
        self.out.add("currency_rates", (rate_id, SECOND_CURRENCY, EUR_PER_USD, None, 1))
        dated_start = self.clock.add_months(day - 92 * DAY_MS, 0)
        while dated_start <= self.clock.now_ms:
            rate = round(EUR_PER_USD * (1 + rng.uniform(-0.06, 0.06)), 4)
            rate_id += 1
            self.rates.append((dated_start, rate))
            self.out.add("currency_rates", (rate_id, SECOND_CURRENCY, rate, self.clock.day(dated_start), 0))
            dated_start = self.clock.add_months(dated_start, 3)

    def rate_on(self, day_ms: int) -> float:
        """The dated EUR rate in force on a day (opportunities convert at their close date's rate)."""
        index = bisect.bisect_right(self.rates, (day_ms, math.inf)) - 1
        return self.rates[max(index, 0)][1]

    def make_teams_and_reps(self) -> None:
        rng = self.rng
        rep_count = max(6, round(math.sqrt(self.target_opportunities) / 2))
        team_count = max(2, math.ceil(rep_count / 8))
        created_ms = self.clock.start_ms - 60 * DAY_MS
        created = self.clock.instant(created_ms)
        team_crm = {}
        for team_id in range(1, team_count + 1):
            team_crm[team_id] = "salesforce" if team_id % 2 else "hubspot"  # split: about half the teams each
        managers: dict[int, int] = {}
        for number in range(rep_count):
            rep_id = number + 1
            team_id = number % team_count + 1
            region = REGIONS[(team_id - 1) % len(REGIONS)]
            profile = PROFILE_PATTERN[number % len(PROFILE_PATTERN)]
            # About one rep in twelve has left (the sixth in the tiny world); managers stay.
            is_manager = team_id not in managers
            active = is_manager or (number % 12 != 5)
            left_ms = None if active else self.clock.now_ms - rng.randint(20, 300) * DAY_MS
            rep = Rep(rep_id, team_id, team_crm[team_id], profile, BEHAVIOURS[profile], region, active, left_ms)
            self.reps.append(rep)
            self.reps_by_team.setdefault(team_id, []).append(rep)
            first = FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]
            last = LAST_NAMES[rng.randrange(len(LAST_NAMES))]
            manager_id = None if is_manager else managers[team_id]
            managers.setdefault(team_id, rep_id)
            updated = self.clock.instant(left_ms) if left_ms else created
            self.out.add("reps", (rep_id, f"{first} {last}", f"{first}.{last}.{rep_id}@example.com".lower(),
                                  team_id, manager_id, region.name, region.timezone, int(active), profile,
                                  created, updated, 0, rep.crm))
        for team_id in range(1, team_count + 1):
            region = REGIONS[(team_id - 1) % len(REGIONS)]
            self.out.add("teams", (team_id, f"{region.name} {math.ceil(team_id / len(REGIONS))}", region.name,
                                   team_crm[team_id], managers[team_id], created, created, 0))
        self.rep_cumulative = _cumulative([rep.behaviour.deal_weight for rep in self.reps])

    # -- accounts and everything that hangs off them ---------------------------------------------------

    def make_accounts(self) -> None:
        rng = random.Random(f"{self.seed}:accounts")
        # Opportunity activities aim a little under the world's total; open leads make up the rest exactly.
        self.activities_per_deal = ACTIVITIES_PER_OPPORTUNITY * 0.8 / 0.95
        last_report = 0
        while self.opportunities_made < self.target_opportunities:
            self.make_account(rng)
            if self.progress and self.opportunities_made - last_report >= 10_000:
                last_report = self.opportunities_made
                self.progress(self.opportunities_made)

    def pick_rep(self, rng: random.Random, at_ms: int, team_id: int | None = None) -> Rep:
        """A rep weighted by profile (stars get more deals), active at `at_ms`."""
        for _ in range(20):
            if team_id is None:
                rep = self.reps[bisect.bisect_left(self.rep_cumulative, rng.random() * self.rep_cumulative[-1])]
            else:
                candidates = self.reps_by_team[team_id]
                rep = candidates[rng.randrange(len(candidates))]
            if rep.left_ms is None or at_ms < rep.left_ms:
                return rep
        return self.reps_by_team[team_id or 1][0]  # the manager never leaves

    def make_account(self, rng: random.Random) -> None:
        clock = self.clock
        account_id = self.out.next_id("accounts")
        created_ms = clock.start_ms + rng.randrange((HISTORY_DAYS - 20) * DAY_MS)
        unowned = rng.random() < 0.01
        owner = None if unowned else self.pick_rep(rng, created_ms)
        region = owner.region if owner else REGIONS[rng.randrange(len(REGIONS))]
        crm = owner.crm if owner else "salesforce"
        currency = SECOND_CURRENCY if rng.random() < region.foreign_currency_share else HOME_CURRENCY
        name = (f"{COMPANY_WORDS[rng.randrange(len(COMPANY_WORDS))]} "
                f"{COMPANY_KINDS[rng.randrange(len(COMPANY_KINDS))]} {account_id}")
        account = AccountState(account_id, name, owner, crm, region, currency, created_ms)
        for _ in range(1 + (rng.random() < 0.6) + (rng.random() < 0.3)):
            self.add_contact(rng, account, created_ms + rng.randrange(3 * DAY_MS), None)
        # Most accounts buy; some stay prospects. Deal count: 1 + a geometric tail (mean about 2.6).
        deals = 0 if rng.random() < 0.12 else 1 + int(rng.expovariate(0.65))
        deals = min(deals, self.target_opportunities - self.opportunities_made)
        self.make_deals(rng, account, deals)
        self.finish_account(rng, account)

    def finish_account(self, rng: random.Random, account: AccountState) -> None:
        clock = self.clock
        updated_ms = clock.last_modified(account.created_ms + rng.randrange(90 * DAY_MS), account.created_ms)
        deleted, deleted_at = self.maybe_deleted(rng, updated_ms, 0.004)
        self.out.add("accounts", (account.id, account.name, account.owner.id if account.owner else None,
                                  account.region.name, INDUSTRIES[account.id % len(INDUSTRIES)],
                                  clock.instant(account.created_ms), clock.instant(updated_ms), deleted,
                                  deleted_at, account.crm))
        for contact in account.contacts:
            if account.first_win_ms is not None and int(contact[-1]) <= account.first_win_ms:
                contact[7], contact[10] = "customer", clock.instant(account.first_win_ms)
            elif account.has_opportunity and contact[7] in ("lead", "marketingqualifiedlead"):
                contact[7] = "opportunity"
            created_ms = contact.pop()
            deleted, deleted_at = self.maybe_deleted(rng, created_ms, 0.003)
            contact[13], contact[14] = deleted, deleted_at
            self.out.add("contacts", tuple(contact))

    def add_contact(self, rng: random.Random, account: AccountState, created_ms: int, lead: tuple | None) -> int:
        """A contact row kept until the account is finished (its lifecycle stage depends on the deals)."""
        clock = self.clock
        contact_id = self.out.next_id("contacts") + len(account.contacts)
        if lead is not None:
            first, last, email, source, mql_at, sql_at = lead
        else:
            first = FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]
            last = LAST_NAMES[rng.randrange(len(LAST_NAMES))]
            email = f"{first}.{last}.c{contact_id}@example.org".lower()
            source = self.lead_source(rng)
            mql_at = clock.instant(created_ms + rng.randrange(20 * DAY_MS)) if rng.random() < 0.5 else None
            sql_at = None
        stage = "salesqualifiedlead" if sql_at else "marketingqualifiedlead" if mql_at else (
            "lead" if rng.random() < 0.7 else "subscriber")
        owner_id = account.owner.id if account.owner else None
        created = clock.instant(created_ms)
        row = [contact_id, account.id, owner_id, first, last, email, source, stage, mql_at, sql_at, None,
               created, created, 0, None, account.crm, created_ms]
        account.contacts.append(row)
        return contact_id

    def lead_source(self, rng: random.Random) -> str:
        return LEAD_SOURCES[bisect.bisect_left(self.lead_source_cumulative,
                                               rng.random() * self.lead_source_cumulative[-1])]

    def maybe_deleted(self, rng: random.Random, after_ms: int, share: float) -> tuple[int, str | None]:
        if rng.random() >= share:
            return 0, None
        return 1, self.clock.instant(after_ms + rng.randrange(max(1, self.clock.now_ms - after_ms)))

    def make_deals(self, rng: random.Random, account: AccountState, deals: int) -> None:
        if deals == 0:
            return
        span = max(self.clock.now_ms - 2 * DAY_MS - account.created_ms, DAY_MS)
        starts = sorted(account.created_ms + HOUR_MS + rng.randrange(span) for _ in range(deals))
        made = 0
        for index, start_ms in enumerate(starts):
            if made >= deals:
                break
            deal_type = "new_business" if index == 0 else ("upsell" if rng.random() < 0.6 else "cross_sell")
            outcome = self.make_opportunity(rng, account, start_ms, deal_type, None)
            made += 1
            # A won subscription starts a contract; its renewals follow while the account has deals left.
            contract = outcome
            if contract is not None and rng.random() < 0.04:
                contract = self.cancel_early(rng, contract)
            while contract is not None and made < deals:
                renewal_start = contract.end_ms - 60 * DAY_MS  # renewals open two months before the end
                if renewal_start >= self.clock.now_ms - DAY_MS:
                    break
                contract = self.make_opportunity(rng, account, renewal_start, "renewal", contract)
                made += 1
            if contract is not None:  # no renewal (yet): the contract runs on
                self.out.add("contracts", self.contract_row(contract, renewal_closed=False, renewed=False))
        self.opportunities_made += made

    def make_opportunity(self, rng: random.Random, account: AccountState, created_ms: int, deal_type: str,
                         renewing: Contract | None) -> Contract | None:
        """One deal with its line items, stage history, activities and lead; the contract it starts.

        A renewal decides the fate of the contract it renews, which is written then.
        """
        clock = self.clock
        out = self.out
        opportunity_id = out.next_id("opportunities")
        owner = self.deal_owner(rng, account, created_ms)
        behaviour = owner.behaviour
        pipeline = 2 if renewing else 1
        # How the deal ends (if it has ended by now) and when.
        if renewing:
            close_ms = renewing.end_ms + DAY_MS
            won = rng.random() >= behaviour.churn_rate
        else:
            cycle_days = rng.randint(14, 120) if deal_type == "new_business" else rng.randint(10, 60)
            if owner.profile == "ineffective":
                cycle_days = int(cycle_days * 1.4)
            close_ms = created_ms + cycle_days * DAY_MS
            won = rng.random() < (behaviour.win_rate if deal_type == "new_business" else behaviour.win_rate + 0.2)
        close_ms -= close_ms % DAY_MS
        closed = close_ms + 17 * HOUR_MS <= clock.now_ms
        path = self.stage_path(rng, pipeline, created_ms, close_ms, closed, won)
        final_stage = path[-1][0]
        stage = STAGE_BY_ID[final_stage]
        currency = account.currency
        rate = self.rate_on(close_ms) if currency != HOME_CURRENCY else 1.0
        items = self.line_items(rng, renewing, deal_type, behaviour, rate)
        amount = round(sum(item[5] for item in items), 2)
        amount_home = round(amount / rate, 2)
        source = self.lead_source(rng) if deal_type == "new_business" else None
        updated_ms = max(path[-1][1], created_ms)
        deleted, deleted_at = self.maybe_deleted(rng, updated_ms, 0.003)
        probability = None if rng.random() < 0.9 or stage[5] else round(min(0.95, stage[4] + 0.05), 2)
        name = f"{account.name} - {PRODUCTS[items[0][0] - 1][2]} {deal_type.replace('_', ' ')}"
        created, updated = clock.instant(created_ms), clock.instant(updated_ms)
        out.add("opportunities", (opportunity_id, name, account.id, owner.id, pipeline, final_stage, amount,
                                  currency, amount_home, probability, stage[7], deal_type, source,
                                  clock.day(close_ms), stage[5], stage[6], created, updated, deleted,
                                  deleted_at, owner.crm))
        account.has_opportunity = True
        for product_id, quantity, list_price, unit_price, discount, total, term, frequency in items:
            out.add("line_items", (out.next_id("line_items"), opportunity_id, product_id, quantity, list_price,
                                   unit_price, discount, total, currency, term, frequency, created, created,
                                   deleted, deleted_at, owner.crm))
        last_step = len(path) - 1
        for step, (stage_id, entered_ms) in enumerate(path):
            history_stage = STAGE_BY_ID[stage_id]
            # The amount is firmed up at the proposal: earlier rows carry the first estimate; the last row
            # always carries the deal's amount as it is now.
            firm = step == last_step or history_stage[3] >= 4 or pipeline == 2
            estimate = amount if firm else round(amount * 0.9, 2)
            entered = clock.instant(entered_ms)
            out.add("stage_history", (out.next_id("stage_history"), opportunity_id, stage_id, estimate,
                                      history_stage[4], clock.day(close_ms), entered, entered, entered, 0,
                                      owner.crm))
        contact_id = account.contacts[rng.randrange(len(account.contacts))][0]
        if deal_type == "new_business" and rng.random() < 0.5:
            contact_id = self.converted_lead(rng, account, owner, opportunity_id, created_ms, source)
        end_ms = close_ms if closed else clock.now_ms
        self.deal_activities(rng, owner, account, opportunity_id, contact_id, created_ms, end_ms, closed)
        if closed and won and account.first_win_ms is None:
            account.first_win_ms = close_ms
        if renewing:
            self.out.add("contracts", self.contract_row(renewing, renewal_closed=closed, renewed=won))
        if not (closed and won):
            return None
        recurring = [item for item in items if item[6]]
        if not recurring:
            return None
        return self.start_contract(account, opportunity_id, close_ms, recurring, currency)

    def deal_owner(self, rng: random.Random, account: AccountState, at_ms: int) -> Rep:
        owner = account.owner
        if owner is not None and (owner.left_ms is None or at_ms < owner.left_ms) and rng.random() < 0.9:
            return owner
        return self.pick_rep(rng, at_ms, owner.team_id if owner else None)

    def stage_path(self, rng: random.Random, pipeline: int, created_ms: int, close_ms: int, closed: bool,
                   won: bool) -> list[tuple[int, int]]:
        """(stage, entered ms) from the first stage to the current one; a closed deal ends in its closed stage."""
        open_stages = OPEN_STAGES[pipeline]
        now_ms = self.clock.now_ms
        if closed:
            reached = len(open_stages) if won else rng.randint(1, len(open_stages))
            stages = list(open_stages[:reached]) + [WON_STAGE[pipeline] if won else LOST_STAGE[pipeline]]
        else:
            elapsed = (now_ms - created_ms) / max(close_ms - created_ms, DAY_MS)
            reached = max(1, min(len(open_stages), 1 + int(elapsed * len(open_stages))))
            stages = list(open_stages[:reached])
        last_ms = min(close_ms + 17 * HOUR_MS, now_ms - 1) if closed else now_ms - 1
        path = [(stages[0], created_ms)]
        steps = len(stages) - 1
        for step, stage_id in enumerate(stages[1:], start=1):
            if closed and step == steps:
                entered = last_ms
            else:
                share = step / (steps + 1)
                entered = created_ms + int((last_ms - created_ms) * share) + rng.randrange(HOUR_MS)
            path.append((stage_id, max(entered, path[-1][1] + MINUTE_MS)))
        return path

    def line_items(self, rng: random.Random, renewing: Contract | None, deal_type: str, behaviour: Behaviour,
                   rate: float) -> list[tuple]:
        """(product, quantity, list price, unit price, discount %, total, term months, billing frequency).

        Prices are in the deal's currency; a recurring item's prices cover its whole term.
        """
        if renewing:
            uplift = 1 + rng.choice((0.0, 0.03, 0.05, 0.07))
            return [(product, quantity, round(list_price * uplift, 2), round(unit * uplift, 2), discount,
                     round(round(unit * uplift, 2) * quantity, 2), term, frequency)
                    for product, quantity, list_price, unit, discount, _total, term, frequency in renewing.items]
        if deal_type == "new_business":
            products = [SUBSCRIPTION_PRODUCTS[rng.randrange(2)]]
            if rng.random() < 0.6:
                products.append(SERVICE_PRODUCTS[rng.randrange(len(SERVICE_PRODUCTS))])
        elif deal_type == "upsell":
            products = [SUBSCRIPTION_PRODUCTS[rng.randrange(3)]]
        else:
            products = [ADD_ON_PRODUCTS[rng.randrange(len(ADD_ON_PRODUCTS))]]
        items = []
        for product_id in products:
            _name, _sku, _family, price, _cost, default_term = PRODUCTS[product_id - 1]
            term = rng.choice((12, 12, 24, 36)) if default_term else None
            frequency = rng.choice(("annually", "annually", "quarterly", "monthly")) if term else None
            quantity = float(rng.randint(5, 120) if product_id in (1, 2) else rng.randint(1, 4))
            list_price = round(price * rate * (term / 12 if term else 1), 2)
            discount = float(rng.choice((0, 0, 0, 5, 10, 15, 20, 25, 30)))
            discount = min(discount, behaviour.max_discount)
            unit_price = round(list_price * (1 - discount / 100), 2)
            items.append((product_id, quantity, list_price, unit_price, discount, round(unit_price * quantity, 2),
                          term, frequency))
        return items

    def start_contract(self, account: AccountState, opportunity_id: int, close_ms: int, recurring: list[tuple],
                       currency: str) -> Contract:
        """The contract a won deal with recurring items starts: on its close date, for the longest term."""
        term = max(item[6] for item in recurring)
        end_ms = self.clock.add_months(close_ms, term) - DAY_MS  # the end date is the contract's last day
        monthly = round(sum(item[5] / item[6] for item in recurring), 2)
        return Contract(account.id, opportunity_id, close_ms, end_ms, term, monthly, currency, account.crm,
                        recurring)

    def cancel_early(self, rng: random.Random, contract: Contract) -> Contract | None:
        """A few customers terminate mid-term: the contract is Cancelled and ends that day, unrenewed."""
        cancel_ms = contract.start_ms + DAY_MS * (1 + rng.randrange(max(1, (contract.end_ms - contract.start_ms)
                                                                        // DAY_MS - 1)))
        if cancel_ms >= self.clock.now_ms:
            return contract
        clock = self.clock
        self.out.add("contracts", (self.out.next_id("contracts"), contract.account_id, contract.opportunity_id,
                                   clock.day(contract.start_ms), clock.day(cancel_ms), contract.term_months,
                                   "Cancelled", contract.monthly_value, contract.currency,
                                   clock.instant(contract.start_ms), clock.instant(cancel_ms + 9 * HOUR_MS), 0,
                                   None, contract.crm))
        return None

    def contract_row(self, contract: Contract, *, renewal_closed: bool, renewed: bool) -> tuple:
        """A contract's row, once its renewal is decided (or still open)."""
        clock = self.clock
        if contract.end_ms < clock.now_ms:
            status = "Expired"
        elif renewal_closed and not renewed:
            status = "Cancelled"  # the customer gave notice: it ends with its term and is not renewed
        else:
            status = "Activated"
        created = clock.instant(contract.start_ms)
        updated = created if status == "Activated" else clock.instant(
            min(max(contract.end_ms + DAY_MS, contract.start_ms), clock.now_ms - 1) if status == "Expired"
            else clock.now_ms - DAY_MS)
        return (self.out.next_id("contracts"), contract.account_id, contract.opportunity_id,
                clock.day(contract.start_ms), clock.day(contract.end_ms), contract.term_months, status,
                contract.monthly_value, contract.currency, created, updated, 0, None, contract.crm)

    def converted_lead(self, rng: random.Random, account: AccountState, owner: Rep, opportunity_id: int,
                       converted_ms: int, source: str | None) -> int:
        """The lead this new-business deal came from, its first responses, and the contact it became."""
        clock = self.clock
        created_ms = converted_ms - rng.randint(2, 30) * DAY_MS
        first = FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]
        last = LAST_NAMES[rng.randrange(len(LAST_NAMES))]
        lead_id = self.out.next_id("leads")
        email = f"{first}.{last}.l{lead_id}@example.org".lower()
        mql_ms = created_ms + rng.randrange(2 * DAY_MS)
        sql_ms = mql_ms + rng.randrange(max(converted_ms - mql_ms, 1))
        mql_at, sql_at = clock.instant(mql_ms), clock.instant(sql_ms)
        contact_id = self.add_contact(rng, account, converted_ms,
                                      (first, last, email, source or "Web", mql_at, sql_at))
        converted = clock.instant(converted_ms)
        self.out.add("leads", (lead_id, owner.id, first, last, email, account.name, source or "Web",
                               "Closed - Converted", mql_at, sql_at, converted, contact_id, account.id,
                               opportunity_id, clock.instant(created_ms), converted, 0, None, owner.crm))
        self.lead_activities(rng, owner, lead_id, created_ms, converted_ms, 1 + rng.randrange(3))
        return contact_id

    # -- activities ------------------------------------------------------------------------------------

    def deal_activities(self, rng: random.Random, owner: Rep, account: AccountState, opportunity_id: int,
                        contact_id: int, start_ms: int, end_ms: int, closed: bool) -> None:
        behaviour = owner.behaviour
        mean = self.activities_per_deal * behaviour.activity_factor
        count = int(mean * 2 * rng.random() + 0.5)  # uniform around the mean: cheap and bounded
        span = max(end_ms - start_ms, HOUR_MS)
        for _ in range(count):
            at_ms = start_ms + rng.randrange(span)
            self.activity(rng, owner, at_ms, None, contact_id, opportunity_id, account.id, behaviour,
                          not_before_ms=start_ms)
        if not closed and rng.random() < 0.4 * behaviour.activity_factor:
            # An open deal has a next step on the calendar.
            at_ms = self.clock.now_ms + rng.randint(1, 14) * DAY_MS + 15 * HOUR_MS
            self.activity(rng, owner, at_ms, None, contact_id, opportunity_id, account.id, behaviour,
                          kind="meeting" if rng.random() < behaviour.meeting_share * 3 else "task")

    def lead_activities(self, rng: random.Random, owner: Rep | None, lead_id: int, created_ms: int,
                        end_ms: int, count: int) -> None:
        if owner is None or count == 0:
            return
        behaviour = owner.behaviour
        low, high = behaviour.first_response_minutes
        # The first response comes the profile's minutes after the lead (sooner for leads of the last days).
        first_ms = min(created_ms + rng.randint(low, high) * MINUTE_MS, self.clock.now_ms - 1)
        self.activity(rng, owner, first_ms, lead_id, None, None, None, behaviour,
                      kind="call" if rng.random() < 0.6 else "email", direction="outbound", exact_time=True)
        span = max(end_ms - first_ms, HOUR_MS)
        for _ in range(count - 1):
            self.activity(rng, owner, min(first_ms + rng.randrange(span), self.clock.now_ms - 1), lead_id,
                          None, None, None, behaviour, not_before_ms=first_ms)

    def activity(self, rng: random.Random, owner: Rep, at_ms: int, lead_id: int | None, contact_id: int | None,
                 opportunity_id: int | None, account_id: int | None, behaviour: Behaviour,
                 kind: str | None = None, direction: str | None = None, exact_time: bool = False,
                 not_before_ms: int = 0) -> None:
        clock = self.clock
        if kind is None:
            roll = rng.random()
            if roll < behaviour.meeting_share:
                kind = "meeting"
            else:
                roll = (roll - behaviour.meeting_share) / (1 - behaviour.meeting_share)
                kind = "call" if roll < 0.42 else "email" if roll < 0.8 else "task" if roll < 0.92 else "note"
        if not exact_time:  # moved into working hours in the rep's region, unless that puts it too early
            working_ms = at_ms - at_ms % DAY_MS + (8 + rng.randrange(10) - owner.region.utc_offset_hours) \
                * HOUR_MS + rng.randrange(HOUR_MS)
            # (nor into the future: what has happened stays in the past)
            if working_ms >= not_before_ms and (working_ms < clock.now_ms or at_ms >= clock.now_ms):
                at_ms = working_ms
        future = at_ms >= clock.now_ms
        subtype = subject = outcome = None
        duration = None
        if kind == "call":
            direction = direction or ("inbound" if rng.random() < 0.15 else "outbound")
            subtype = "Discovery" if rng.random() < 0.3 else "Follow-up"
            outcome = CALL_OUTCOMES[bisect.bisect_left(self.call_outcome_cumulative,
                                                       rng.random() * self.call_outcome_cumulative[-1])]
            duration = rng.randint(120, 1800) if outcome == "Connected" else rng.randint(10, 60)
            status = "scheduled" if future else "completed"
            subject = f"Call: {subtype}"
        elif kind == "email":
            direction = direction or ("inbound" if rng.random() < 0.25 else "outbound")
            subtype = "Quote" if rng.random() < 0.1 else "Proposal" if rng.random() < 0.1 else "Follow-up"
            status = "completed"
            subject = f"Email: {subtype}"
        elif kind == "meeting":
            subtype = "Demo" if rng.random() < 0.4 else "Discovery" if rng.random() < 0.5 else "Proposal"
            duration = rng.choice((1800, 2700, 3600))
            if future:
                status = "scheduled"
            else:
                roll = rng.random()
                status = "completed" if roll < behaviour.meeting_held else (
                    "no_show" if roll < (1 + behaviour.meeting_held) / 2 else "cancelled")
            subject = f"Meeting: {subtype}"
        elif kind == "task":
            subtype = "Send quote" if rng.random() < 0.15 else "Follow-up"
            status = "open" if future or rng.random() < 0.1 else "completed"
            subject = f"Task: {subtype}"
        else:
            status = "completed"
            subject = "Note"
        # Meetings are booked days ahead; everything else is logged when it happens.
        if kind == "meeting" or future:
            created_ms = min(at_ms - rng.randint(1, 10) * DAY_MS, clock.now_ms - HOUR_MS)
        else:
            created_ms = at_ms + rng.randrange(5 * MINUTE_MS)
        created_ms = min(created_ms, clock.now_ms - 1)
        updated_ms = clock.last_modified(max(created_ms, at_ms + HOUR_MS), created_ms)
        created = clock.instant(created_ms)
        deleted, deleted_at = (1, clock.instant(updated_ms + 1)) if rng.random() < 0.002 else (0, None)
        self.out.add("activities", (self.out.next_id("activities"), kind, subtype, subject, status, direction,
                                    owner.id, clock.instant(at_ms), lead_id, contact_id, opportunity_id,
                                    account_id, duration, None if kind != "call" else outcome, created,
                                    clock.instant(updated_ms), deleted, deleted_at, owner.crm))

    # -- leads that have not converted -----------------------------------------------------------------

    def make_open_leads(self) -> None:
        """Leads still open or disqualified; their activities bring the world's total to its target.

        Lead owners are drawn twice from the same seed: a first pass sums their activity weights, so the
        second can share out exactly the activities still missing (flat memory, exact total).
        """
        lead_count = max(4, int(self.target_opportunities * 0.8))
        self.out.flush("activities")
        missing = max(0, self.activities_target - self.out.counts["activities"])
        total_weight = 0.0
        owner_rng = random.Random(f"{self.seed}:lead-owners")
        for _ in range(lead_count):
            owner, _created_ms = self.lead_owner(owner_rng)
            total_weight += owner.behaviour.activity_factor if owner else 0.0
        owner_rng = random.Random(f"{self.seed}:lead-owners")
        rng = random.Random(f"{self.seed}:leads")
        cumulative = 0.0
        shared = 0
        for _ in range(lead_count):
            owner, created_ms = self.lead_owner(owner_rng)
            cumulative += owner.behaviour.activity_factor if owner else 0.0
            upto = int(missing * cumulative / total_weight + 1e-9) if total_weight else 0
            count, shared = upto - shared, upto
            self.open_lead(rng, owner, created_ms, count)

    def lead_owner(self, rng: random.Random) -> tuple[Rep | None, int]:
        created_ms = self.clock.start_ms + rng.randrange(HISTORY_DAYS * DAY_MS - HOUR_MS)
        if rng.random() < 0.03:
            return None, created_ms  # sitting in a queue: nobody owns it
        return self.pick_rep(rng, created_ms), created_ms

    def open_lead(self, rng: random.Random, owner: Rep | None, created_ms: int, activities: int) -> None:
        clock = self.clock
        lead_id = self.out.next_id("leads")
        first = FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]
        last = LAST_NAMES[rng.randrange(len(LAST_NAMES))]
        age_days = (clock.now_ms - created_ms) // DAY_MS
        roll = rng.random()
        if activities == 0 and roll < 0.5:
            status = "Open - Not Contacted"
        elif age_days > 60 and roll < 0.7:
            status = "Closed - Not Converted"
        else:
            status = "Working - Contacted"
        mql_at = sql_at = None
        if rng.random() < 0.45:
            mql_ms = created_ms + rng.randrange(3 * DAY_MS)
            mql_at = clock.instant(min(mql_ms, clock.now_ms - 1))
            if rng.random() < 0.3:
                sql_at = clock.instant(min(mql_ms + rng.randrange(10 * DAY_MS), clock.now_ms - 1))
        updated_ms = clock.last_modified(created_ms + rng.randrange(30 * DAY_MS), created_ms)
        deleted, deleted_at = self.maybe_deleted(rng, updated_ms, 0.004)
        company = (f"{COMPANY_WORDS[rng.randrange(len(COMPANY_WORDS))]} "
                   f"{COMPANY_KINDS[rng.randrange(len(COMPANY_KINDS))]}")
        self.out.add("leads", (lead_id, owner.id if owner else None, first, last,
                               f"{first}.{last}.l{lead_id}@example.net".lower(), company, self.lead_source(rng),
                               status, mql_at, sql_at, None, None, None, None, clock.instant(created_ms),
                               clock.instant(updated_ms), deleted, deleted_at,
                               owner.crm if owner else "salesforce"))
        end_ms = min(created_ms + 45 * DAY_MS, clock.now_ms - 1)
        self.lead_activities(rng, owner, lead_id, created_ms, end_ms, activities)


def _cumulative(weights: Sequence[float]) -> list[float]:
    total = 0.0
    result = []
    for weight in weights:
        total += weight
        result.append(total)
    return result
