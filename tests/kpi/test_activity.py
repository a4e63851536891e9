"""Velocity and activity KPIs on a hand-built dataset in America/New_York (UTC−5 in winter).

A call at 20:00 on 31 January in New York is 01:00 on 1 February in UTC and counts in January.  A deal
created at 22:00 on 1 December in New York (already 2 December in UTC) has a cycle counted from 1 December.
"""

from __future__ import annotations

import pytest

from agent.db import Database
from agent.testing.kpi import KpiDataset, assert_kpi, kpi_config, run_kpis

TZ = "America/New_York"
JAN, FEB = "2024-01", "2024-02"
ANA, BEN, DORA, ELI, FINN = (f"{name}@example.com" for name in ("ana", "ben", "dora", "eli", "finn"))


def _activities(data: KpiDataset) -> None:
    for at in ("2024-01-03 10:00", "2024-01-04 10:00", "2024-01-05 10:00", "2024-01-31 20:00"):
        data.activity("call", owner=ANA, at=at)
    data.activity("call", owner=ANA, at="2024-01-06 10:00", direction="inbound")
    data.activity("call", owner=ANA, at="2024-01-06 11:00", status="open")
    data.activity("email", owner=ANA, at="2024-01-07 10:00")
    data.activity("email", owner=ANA, at="2024-01-07 11:00")
    data.activity("email", owner=ANA, at="2024-01-07 12:00", direction="inbound")
    data.activity("meeting", owner=ANA, at="2024-01-10 10:00", created="2024-01-08 10:00", direction="none")
    data.activity("meeting", owner=ANA, at="2024-01-11 10:00", created="2024-01-08 11:00", direction="none")
    data.activity(
        "meeting", owner=ANA, at="2024-01-12 10:00", created="2024-01-08 12:00", status="cancelled", direction="none"
    )
    data.activity(
        "meeting", owner=ANA, at="2024-01-13 10:00", created="2024-01-08 13:00", status="no_show", direction="none"
    )
    data.activity("demo", owner=ANA, at="2024-01-14 10:00", created="2024-01-09 10:00", direction="none")
    data.activity(
        "meeting", owner=ANA, at="2024-02-20 10:00", created="2024-02-10 10:00", status="scheduled", direction="none"
    )
    data.activity("proposal", owner=ANA, at="2024-01-15 10:00", direction="none")
    data.activity("call", owner=BEN, at="2024-01-03 10:00")
    data.activity("call", owner=BEN, at="2024-01-04 10:00")


def _lead_responses(data: KpiDataset) -> None:
    first = data.lead(owner=DORA, created="2024-01-10 09:00")
    data.activity("call", owner=DORA, at="2024-01-10 09:03", lead=first)
    contact = data.contact(owner=DORA)
    second = data.lead(
        owner=DORA, created="2024-01-11 09:00", converted_contact=contact, converted_at="2024-01-11 09:10"
    )
    data.activity("email", owner=DORA, at="2024-01-11 09:01", lead=second, direction="inbound")
    data.activity(
        "meeting", owner=DORA, at="2024-01-18 09:00", created="2024-01-11 09:20", contact=contact, direction="none"
    )
    third = data.lead(owner=DORA, created="2024-01-12 09:00")
    data.activity("call", owner=ELI, at="2024-01-12 09:02", lead=third)
    deal = data.deal(owner=ELI, created="2024-01-12 10:30")
    data.lead(owner=ELI, created="2024-01-12 10:00", converted_deal=deal, converted_at="2024-01-12 10:30")
    data.activity("call", owner=ELI, at="2024-01-12 11:00", deal=deal)


def _touches(data: KpiDataset) -> None:
    lead = data.lead(owner=FINN, created="2024-01-03 09:00")
    data.activity("call", owner=FINN, at="2024-01-04 10:00", lead=lead)
    data.activity("call", owner=FINN, at="2024-01-05 10:00", lead=lead)
    data.activity("email", owner=FINN, at="2024-01-06 10:00", lead=lead)
    data.activity("meeting", owner=FINN, at="2024-01-08 10:00", lead=lead, direction="none")
    deal = data.deal(owner=FINN, created="2024-01-19 10:00")
    data.activity("call", owner=FINN, at="2024-01-20 10:00", deal=deal)
    data.activity("meeting", owner=FINN, at="2024-01-25 10:00", deal=deal, direction="none")
    data.activity("call", owner=FINN, at="2024-01-26 10:00", deal=deal)


@pytest.fixture
def activity_db(db: Database) -> Database:
    data = KpiDataset(db, timezone=TZ)
    data.team("north"), data.team("south")
    for rep, team in ((ANA, "north"), (BEN, "north"), (FINN, "north"), (DORA, "south"), (ELI, "south")):
        data.rep(rep, team=team)
    _activities(data)
    _lead_responses(data)
    _touches(data)
    data.deal(owner=ANA, created="2023-12-01 22:00", close="2024-01-10", status="won")
    data.deal(owner=BEN, created="2024-01-05 10:00", close="2024-01-15", status="won")
    result = run_kpis(db, kpi_config(TZ, kpis={"history_periods": 2}), at="2024-02-15")
    assert result.failed == {}
    return db


def test_activity_counts_only_what_counts(activity_db: Database) -> None:
    db = activity_db
    # calls: 3 + the one at 20:00 on 31 Jan (New York); not the inbound one nor the open task
    assert_kpi(db, "calls", JAN, "rep:ana@example.com", 4)
    assert_kpi(db, "emails", JAN, "rep:ana@example.com", 2)  # not the inbound one
    assert_kpi(db, "meetings", JAN, "rep:ana@example.com", 2)  # not the cancelled nor the no-show
    assert_kpi(db, "meetings", FEB, "rep:ana@example.com", 0)  # the 20 Feb meeting has not happened by 15 Feb
    assert_kpi(db, "demos", JAN, "rep:ana@example.com", 1)
    assert_kpi(db, "proposals", JAN, "rep:ana@example.com", 1)
    assert_kpi(db, "calls", JAN, "team:north", 4 + 2 + 4)  # ana, ben, finn (3 before his meetings, 1 after)
    # meetings booked in January (created): 4 meetings + 1 demo = 5, over 4 calls
    assert_kpi(db, "call_to_meeting", JAN, "rep:ana@example.com", 125, numerator=5, denominator=4)
    assert_kpi(db, "call_to_meeting", FEB, "rep:ana@example.com", None, numerator=1, denominator=0)
    # calls + emails per active rep: north = ana 6 + ben 2 + finn 5 over 3 reps
    assert_kpi(db, "activities_per_rep", JAN, "team:north", 13 / 3, numerator=13, denominator=3)


def test_velocity(activity_db: Database) -> None:
    db = activity_db
    # ana's deal: created 1 Dec (local), closed 10 Jan → 40 days; ben's: 5 → 15 Jan → 10 days
    assert_kpi(db, "sales_cycle_days", JAN, "rep:ana@example.com", 40)
    assert_kpi(db, "sales_cycle_days", JAN, "team:north", 25, numerator=50, denominator=2)
    # dora: 3 minutes (call on the lead) and 20 minutes (meeting booked on the contact it became);
    # the third lead got only eli's call, which is not its owner's: no response
    assert_kpi(db, "lead_response_minutes", JAN, "rep:dora@example.com", 11.5, numerator=23, denominator=2)
    assert_kpi(db, "leads_answered_5min", JAN, "rep:dora@example.com", 100 / 3, numerator=1, denominator=3)
    # eli's lead: answered on the deal it was converted into, 60 minutes later
    assert_kpi(db, "lead_response_minutes", JAN, "rep:eli@example.com", 60)
    assert_kpi(db, "lead_response_minutes", JAN, "team:south", 83 / 3, numerator=83, denominator=3)
    assert_kpi(db, "lead_flow", JAN, "org", 5)


def test_touches_to_first_meeting(activity_db: Database) -> None:
    # finn's lead: 2 calls + 1 email before its first meeting; finn's deal: 1 call before (1 after) → (3 + 1) ÷ 2
    assert_kpi(activity_db, "touches_to_meeting", JAN, "rep:finn@example.com", 2, numerator=4, denominator=2)


def test_touches_follow_a_converted_lead_and_count_only_first_meetings_in_the_period(db: Database) -> None:
    """gus (UTC): a lead converted into a contact and a deal keeps its activities on all three; a
    cancelled meeting is not a first meeting; a record first met before the computed periods is not met
    again in them; a meeting still ahead is not held; a deal met without touches counts 0."""
    gus = "gus@example.com"
    data = KpiDataset(db)
    data.rep(gus)
    contact, converted = data.contact(owner=gus), data.deal(owner=gus, created="2024-01-04 12:00")
    lead = data.lead(owner=gus, created="2024-01-02 09:00", converted_contact=contact, converted_deal=converted)
    data.activity("call", owner=gus, at="2024-01-03 10:00", lead=lead)
    data.activity("email", owner=gus, at="2024-01-04 10:00", contact=contact)
    data.activity("call", owner=gus, at="2024-01-05 10:00", deal=converted)
    data.activity("meeting", owner=gus, at="2024-01-06 10:00", lead=lead, status="cancelled", direction="none")
    data.activity("meeting", owner=gus, at="2024-01-10 10:00", deal=converted, direction="none")  # first held
    data.activity("call", owner=gus, at="2024-01-12 10:00", lead=lead)  # after it
    early = data.lead(owner=gus, created="2023-12-01 09:00")
    data.activity("meeting", owner=gus, at="2023-12-20 10:00", lead=early, direction="none")
    data.activity("call", owner=gus, at="2024-02-01 10:00", lead=early)
    data.activity("meeting", owner=gus, at="2024-02-05 10:00", lead=early, direction="none")  # not its first
    ahead = data.lead(owner=gus, created="2024-02-01 09:00")
    data.activity("call", owner=gus, at="2024-02-02 10:00", lead=ahead)
    data.activity("meeting", owner=gus, at="2024-03-05 10:00", lead=ahead, status="scheduled", direction="none")
    cold = data.deal(owner=gus, created="2024-02-01 09:00")
    data.activity("demo", owner=gus, at="2024-02-10 10:00", deal=cold, direction="none")
    run_kpis(db, kpi_config(kpis={"history_periods": 2}), at="2024-02-28")
    # January: the converted lead, call + email + call on lead, contact and deal before 10 Jan: 3 ÷ 1
    assert_kpi(db, "touches_to_meeting", JAN, f"rep:{gus}", 3, numerator=3, denominator=1)
    # February: only the cold deal, met without a touch: 0 ÷ 1
    assert_kpi(db, "touches_to_meeting", FEB, f"rep:{gus}", 0, numerator=0, denominator=1)
