"""The fault spec grammar (FAULTS.md) and how a FaultPlan picks the requests it hits."""

from __future__ import annotations

import pytest

from connectors.sandbox.faults import Fault, FaultPlan, FaultSpecError
from connectors.sandbox.http import SandboxRequest


def get(target: str, method: str = "GET") -> SandboxRequest:
    return SandboxRequest.build(method, target)


def test_parse_the_documented_example() -> None:
    plan = FaultPlan.parse("hubspot:rate_limit@/search/:after=2,times=3,retry_after=1;"
                           "salesforce:status:code=503,times=5")
    assert plan.faults == [
        Fault("hubspot", "rate_limit", "/search/", after=2, times=3, params={"retry_after": "1"}),
        Fault("salesforce", "status", None, after=0, times=5, params={"code": "503"}),
    ]


def test_parse_quoted_match_times_all_spaces_and_trailing_separator() -> None:
    plan = FaultPlan.parse(' salesforce:slow@"^GET /services/data/v[0-9.]+/query(All)?/\\?q=":ms=250, times=all ;'
                           " *:reset ; ")
    slow, reset = plan.faults
    assert slow == Fault("salesforce", "slow", r"^GET /services/data/v[0-9.]+/query(All)?/\?q=", 0, None,
                         {"ms": "250"})
    assert reset == Fault("*", "reset")


def test_parse_service_kinds_and_their_params() -> None:
    plan = FaultPlan.parse("hubspot:rate_limit:policy=TEN_SECONDLY_ROLLING,retry_after=0.5;"
                           "hubspot:search_rate_limit;salesforce:session_expired@/query/:after=1;"
                           "salesforce:mutate_between_pages:action=delete,count=3;*:same_stamp:count=40")
    assert [(fault.service, fault.kind, dict(fault.params)) for fault in plan] == [
        ("hubspot", "rate_limit", {"policy": "TEN_SECONDLY_ROLLING", "retry_after": "0.5"}),
        ("hubspot", "search_rate_limit", {}),
        ("salesforce", "session_expired", {}),
        ("salesforce", "mutate_between_pages", {"action": "delete", "count": "3"}),
        ("*", "same_stamp", {"count": "40"}),
    ]
    assert plan.faults[0].float_param("retry_after", 10) == 0.5
    assert plan.faults[0].retry_after(1) == 0.5 and plan.faults[1].retry_after(1) == 1
    assert plan.faults[3].int_param("count", 1) == 3


def test_retry_after_none_means_no_header() -> None:
    (fault,) = FaultPlan.parse("hubspot:rate_limit:retry_after=none")
    assert fault.retry_after(1) is None


def test_spec_round_trips_through_str() -> None:
    spec = 'hubspot:rate_limit@/search/:after=2,times=3,retry_after=1;salesforce:slow@"a:b":times=all,ms=5'
    plan = FaultPlan.parse(spec)
    assert str(plan) == spec
    assert FaultPlan.parse(str(plan)).faults == plan.faults


def test_doubled_quote_inside_quotes_is_one_quote() -> None:
    (fault,) = FaultPlan.parse('hubspot:reset@"q=""x"";\\d"')
    assert fault.match == 'q="x";\\d'
    assert str(fault) == 'hubspot:reset@"q=""x"";\\d"'


def test_empty_spec_is_no_faults() -> None:
    assert len(FaultPlan.parse("")) == 0 and len(FaultPlan.parse(None)) == 0


@pytest.mark.parametrize(("spec", "message"), [
    ("hubspot:session_expired", "not one of hubspot's"),
    ("*:rate_limit", "not one of *'s"),
    ("zendesk:reset", "unknown service 'zendesk'"),
    ("salesforce:status", "needs a code"),
    ("salesforce:status:code=abc", "must be a whole number"),
    ("salesforce:slow:millis=5", "takes no param 'millis'"),
    ("hubspot:rate_limit:policy=HOURLY", "must be one of DAILY, SECONDLY, TEN_SECONDLY_ROLLING"),
    ("salesforce:mutate_between_pages:action=insert", "must be one of delete, update"),
    ("salesforce:reset:times=some", "must be a whole number or 'all'"),
    ("salesforce:reset:after=-1", "must be a whole number"),
    ('salesforce:reset@"unterminated', "unterminated quoted string"),
    ("salesforce:reset@(unclosed", "bad match expression"),
    ("salesforce", "expected ':' and a fault kind"),
    ("salesforce:reset:times", "expected '=' after param 'times'"),
    ("salesforce:reset:times=1,times=2", "given twice"),
    ("hubspot:rate_limit:retry_after=soon", "must be a number of seconds, or none"),
])
def test_bad_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(FaultSpecError, match=message.replace("(", r"\(").replace("*", r"\*")):
        FaultPlan.parse(spec)


def test_after_and_times_count_matching_requests_only() -> None:
    plan = FaultPlan([Fault("hubspot", "status", match="/search", after=2, times=2, params={"code": "502"})])
    taken = []
    for target in ["/search", "/objects", "/search", "/search", "/objects", "/search", "/search"]:
        taken.append(plan.take("hubspot", get(target)) is not None)
    # matching requests: #1 #2 let through, #3 #4 hit, #5 through again; /objects never counts
    assert taken == [False, False, False, True, False, True, False]
    assert plan.hits() == 2 and plan.pending() == []


def test_match_sees_method_path_and_query() -> None:
    plan = FaultPlan([Fault("*", "reset", match=r"^POST /crm/v3/objects/deals/search\?x=1$", times=None)])
    assert plan.take("hubspot", get("/crm/v3/objects/deals/search?x=1", "POST")) is not None
    assert plan.take("hubspot", get("/crm/v3/objects/deals/search?x=1", "GET")) is None
    assert plan.take("salesforce", get("/crm/v3/objects/deals/search?x=2", "POST")) is None


def test_faults_apply_in_order_one_after_another() -> None:
    plan = FaultPlan.parse("salesforce:status:code=503;salesforce:status:code=500;salesforce:slow:ms=1")
    kinds = [fault and (fault.kind, fault.params.get("code")) for fault in
             (plan.take("salesforce", get("/q")) for _ in range(4))]
    assert kinds == [("status", "503"), ("status", "500"), ("slow", None), None]


def test_service_filter_and_wildcard() -> None:
    plan = FaultPlan.parse("hubspot:status:code=429,times=all;*:reset:times=1")
    assert plan.take("salesforce", get("/x")).kind == "reset"  # type: ignore[union-attr]
    assert plan.take("salesforce", get("/x")) is None
    assert plan.take("hubspot", get("/x")).kind == "status"  # type: ignore[union-attr]
    assert plan.hits("status") == 1 and plan.hits("reset") == 1


def test_clear_and_add_while_in_use() -> None:
    plan = FaultPlan.parse("salesforce:reset:times=all")
    assert plan.take("salesforce", get("/x")) is not None
    plan.clear()
    assert plan.take("salesforce", get("/x")) is None
    plan.add(Fault("salesforce", "truncate"))
    assert plan.take("salesforce", get("/x")).kind == "truncate"  # type: ignore[union-attr]
