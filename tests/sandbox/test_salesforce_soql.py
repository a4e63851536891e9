"""The SOQL parser, Salesforce ids and date literals on their own (no server): the pieces the service
stands on, with inputs and expected outputs written out by hand."""

from __future__ import annotations

from datetime import date

import pytest

from connectors.sandbox.salesforce.ids import InvalidIdError, decode_id, make_id
from connectors.sandbox.salesforce.soql import (
    Comparison,
    FunctionCall,
    Literal,
    Logical,
    Negation,
    SoqlError,
    parse,
)
from connectors.sandbox.salesforce.values import date_literal_range, salesforce_datetime


def test_select_list_relationships_and_clauses() -> None:
    query = parse("select Id, Owner.Email, convertCurrency(Amount) from Opportunity o "
                  "where o.Amount > 10 order by o.CloseDate desc nulls last, Id limit 5 offset 10")
    assert query.object_name == "Opportunity" and query.object_alias == "o"
    assert [item.expression.parts for item in query.select[:2]] == [("Id",), ("Owner", "Email")]
    function = query.select[2].expression
    assert isinstance(function, FunctionCall) and function.name == "CONVERTCURRENCY"
    assert function.argument is not None and function.argument.parts == ("Amount",)
    assert isinstance(query.where, Comparison) and query.where.field.parts == ("Amount",)  # alias stripped
    assert [(item.field.parts, item.descending, item.nulls_last) for item in query.order_by] == [
        (("CloseDate",), True, True), (("Id",), False, None)]
    assert (query.limit, query.offset) == (5, 10)


def test_where_grammar() -> None:
    query = parse("SELECT Id FROM Lead WHERE (Status = 'Open' OR Status != 'x') AND NOT Email LIKE '%@a\\_b.com' "
                  "AND LeadSource IN ('Web', 'Other') AND Company NOT IN ('A') AND ConvertedDate = null")
    where = query.where
    assert isinstance(where, Logical) and where.operator == "AND" and len(where.operands) == 5
    inner = where.operands[0]
    assert isinstance(inner, Logical) and inner.operator == "OR"
    negated = where.operands[1]
    assert isinstance(negated, Negation) and isinstance(negated.operand, Comparison)
    like = negated.operand.value
    assert isinstance(like, Literal) and like.value == "%@a_b.com" and like.like_pattern == "%@a\\_b.com"
    assert [(c.operator, [v.value for v in c.value]) for c in where.operands[2:4]] == [  # type: ignore[union-attr]
        ("IN", ["Web", "Other"]), ("NOT IN", ["A"])]
    assert where.operands[4].value.kind == "null"  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("'it\\'s'", "string", "it's"),
    ("'a\\\\b'", "string", "a\\b"),
    ("'line\\nbreak'", "string", "line\nbreak"),
    ("2026-01-01", "date", "2026-01-01"),
    ("2026-01-01T00:00:00Z", "datetime", "2026-01-01T00:00:00Z"),
    ("2026-01-01T02:00:00+02:00", "datetime", "2026-01-01T02:00:00+02:00"),
    ("2026-01-01T00:00:00.250Z", "datetime", "2026-01-01T00:00:00.250Z"),
    ("-12.5", "number", "-12.5"),
    ("TRUE", "boolean", True),
    ("null", "null", None),
    ("TODAY", "date_literal", ("TODAY", None)),
    ("LAST_N_DAYS:30", "date_literal", ("LAST_N_DAYS", 30)),
])
def test_literals(text: str, kind: str, value: object) -> None:
    where = parse(f"SELECT Id FROM Account WHERE Name = {text}").where
    assert isinstance(where, Comparison) and isinstance(where.value, Literal)
    assert (where.value.kind, where.value.value) == (kind, value)


@pytest.mark.parametrize(("soql", "message"), [
    ("SELECT FROM Account", "unexpected token: FROM"),
    ("SELECT Id FROM", "unexpected token: <EOF>"),
    ("SELECT Id FROM Account WHERE", "unexpected token: <EOF>"),
    ("SELECT Id FROM Account WHERE Name = 'open", "the string literal is not closed"),
    ("SELECT Id FROM Account WHERE Name = 'a\\qb'", "Illegal character sequence '\\q'"),
    ("SELECT Id FROM Account WHERE Name = :name", "bind variables exist only in Apex"),
    ("SELECT Id FROM Account WHERE a = 1 AND b = 2 OR c = 3", "unexpected token: OR"),
    ("SELECT Id FROM Account LIMIT x", "unexpected token: x"),
    ("SELECT Name n FROM Account", "unexpected token: n"),
    ("SELECT Id FROM Account WHERE CreatedDate = LAST_N_WIDGETS:3", "unexpected token: LAST_N_WIDGETS:3"),
    ("SELECT Foo(Id) FROM Account", "Unknown function: Foo"),
    ("", "A query string has to be specified"),
])
def test_malformed(soql: str, message: str) -> None:
    with pytest.raises(SoqlError) as raised:
        parse(soql)
    assert raised.value.error_code == "MALFORMED_QUERY"
    assert message in raised.value.message


@pytest.mark.parametrize(("soql", "construct"), [
    ("SELECT StageName, COUNT(Id) FROM Opportunity GROUP BY StageName", "GROUP BY"),
    ("SELECT Id FROM Opportunity HAVING COUNT(Id) > 1", "HAVING"),
    ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "relationship subquery"),
    ("SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact)", "semi-join"),
    ("SELECT TYPEOF What WHEN Account THEN Name END FROM Event", "TYPEOF"),
    ("SELECT Id FROM Account FOR VIEW", "FOR VIEW"),
    ("SELECT Id FROM Account FOR UPDATE", "FOR UPDATE"),
    ("SELECT Id FROM Account UPDATE TRACKING", "UPDATE TRACKING"),
    ("SELECT Id FROM Account WITH SECURITY_ENFORCED", "WITH"),
    ("SELECT Id FROM Account USING SCOPE mine", "USING SCOPE"),
    ("SELECT Id FROM Account ALL ROWS", "ALL ROWS"),
    ("SELECT toLabel(Industry) FROM Account", "toLabel"),
    ("SELECT Id FROM Opportunity WHERE CALENDAR_YEAR(CloseDate) = 2026", "CALENDAR_YEAR"),
    ("SELECT Id FROM Opportunity WHERE Amount > USD5000", "currency literal"),
    ("SELECT Id FROM Opportunity WHERE Tags__c INCLUDES ('a')", "INCLUDES"),
])
def test_valid_soql_outside_the_subset_is_not_supported(soql: str, construct: str) -> None:
    with pytest.raises(SoqlError) as raised:
        parse(soql)
    assert raised.value.error_code == "NOT_SUPPORTED_BY_SANDBOX"
    assert construct in raised.value.message
    assert "not supported by the Salesforce sandbox" in raised.value.message


def test_error_rendering_points_at_row_and_column() -> None:
    soql = "SELECT Id\nFROM Account\nWHERE Name = 'x' AND Foo 5"
    with pytest.raises(SoqlError) as raised:
        parse(soql)
    assert raised.value.render(soql) == ("\nWHERE Name = 'x' AND Foo 5\n" + " " * 25 + "^\n"
                                         "ERROR at Row:3:Column:26\nunexpected token: 5")


@pytest.mark.parametrize(("prefix", "number", "expected"), [
    ("006", 1, "0068d0000000001AAA"),
    ("006", 61, "0068d000000000zAAA"),  # lower-case z: no bit
    ("006", 62, "0068d0000000010AAA"),
    ("001", 10, "0018d000000000AAAQ"),  # 10 is "A" (0-9, A-Z, a-z): upper case at place 5 of block 3
    ("00Q", 1, "00Q8d0000000001EAA"),  # "Q" at place 3 of block 1
    ("005", 0, "0058d0000000000AAA"),
])
def test_ids_written_by_hand(prefix: str, number: int, expected: str) -> None:
    assert make_id(prefix, number) == expected
    decoded = decode_id(expected)
    assert (decoded.prefix, decoded.number) == (prefix, number)
    assert decode_id(expected[:15]).number == number  # the 15-character form
    assert decode_id(expected.upper()[:15] + expected[15:]).number == number  # case restored from the suffix


def test_ids_sort_as_their_numbers() -> None:
    numbers = [1, 9, 10, 61, 62, 3843, 3844, 1_000_000]
    assert sorted(make_id("006", n) for n in numbers) == [make_id("006", n) for n in numbers]


@pytest.mark.parametrize("text", ["12345", "0068d0000000001AA!", "0068d0000000001AA9"])
def test_invalid_ids(text: str) -> None:
    with pytest.raises(InvalidIdError):
        decode_id(text)


def test_foreign_ids_match_no_record() -> None:
    assert decode_id("006D000000IRFmaIAH").number == -1  # a real org's id, never issued by the sandbox


@pytest.mark.parametrize(("name", "number", "start", "end"), [
    ("TODAY", None, date(2026, 3, 4), date(2026, 3, 5)),
    ("YESTERDAY", None, date(2026, 3, 3), date(2026, 3, 4)),
    ("LAST_N_DAYS", 7, date(2026, 2, 25), date(2026, 3, 5)),
    ("NEXT_N_DAYS", 2, date(2026, 3, 5), date(2026, 3, 7)),
    ("THIS_MONTH", None, date(2026, 3, 1), date(2026, 4, 1)),
    ("LAST_MONTH", None, date(2026, 2, 1), date(2026, 3, 1)),
    ("THIS_QUARTER", None, date(2026, 1, 1), date(2026, 4, 1)),
    ("LAST_QUARTER", None, date(2025, 10, 1), date(2026, 1, 1)),
    ("THIS_YEAR", None, date(2026, 1, 1), date(2027, 1, 1)),
    ("THIS_WEEK", None, date(2026, 3, 1), date(2026, 3, 8)),  # 2026-03-04 is a Wednesday; weeks start Sunday
    ("N_DAYS_AGO", 3, date(2026, 3, 1), date(2026, 3, 2)),
])
def test_date_literals(name: str, number: int | None, start: date, end: date) -> None:
    assert date_literal_range(name, number, date(2026, 3, 4)) == (start, end)


def test_datetime_rendering() -> None:
    assert salesforce_datetime("2026-03-04T09:15:00.000Z") == "2026-03-04T09:15:00.000+0000"
    assert salesforce_datetime("2026-03-04T10:15:00.5+01:00") == "2026-03-04T09:15:00.500+0000"
