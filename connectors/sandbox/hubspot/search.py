"""Search request bodies (filterGroups, sorts, query) turned into SQL over the world store.

The body is checked as HubSpot checks it (operators, highValue, values, caps on groups and filters, one
sort, limit and the 10,000-result window) and each failure raises `SearchRequestError` with the message
and HTTP status HubSpot answers. A valid body becomes a `WHERE` clause, an `ORDER BY` and the offset the
`after` cursor stands for: search paging is an offset into the live result, so records that change
between two pages shift the later pages, exactly as they do in HubSpot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.sandbox.hubspot.codecs import Codec, EnumCodec, FilterValueError
from connectors.sandbox.hubspot.limits import SearchCaps
from connectors.sandbox.hubspot.objects import ObjectSpec, Prop

OPERATORS = ("EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY",
             "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN")
RANGE_SQL = {"LT": "<", "LTE": "<=", "GT": ">", "GTE": ">="}
DIRECTIONS = ("ASCENDING", "DESCENDING")
DEFAULT_SEARCH_LIMIT = 10
TOKEN_SEPARATORS = ("-", ".", ",", "@", "_", "/", "(", ")", ":", ";")


class SearchRequestError(ValueError):
    """A search body HubSpot refuses: `message` is HubSpot's, `status` the HTTP status (400)."""

    def __init__(self, message: str, *, status: int = 400, sub_category: str | None = None,
                 context: Mapping[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.sub_category = sub_category
        self.context = dict(context or {})


@dataclass(frozen=True)
class Filter:
    prop: Prop
    operator: str
    value: str | None
    high_value: str | None
    values: tuple[str, ...]


@dataclass(frozen=True)
class SearchPlan:
    where_sql: str
    params: list[Any]
    order_sql: str
    offset: int
    limit: int
    properties: list[str] | None  # None = the object's default properties


def _json_position_error(detail: str) -> SearchRequestError:
    # HubSpot reports body problems as Jackson deserialisation errors; the position is not meaningful here.
    return SearchRequestError(f"Invalid input JSON on line 1, column 1: {detail}")


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_filter(spec: ObjectSpec, raw: Any) -> Filter:
    if not isinstance(raw, Mapping):
        raise _json_position_error("Cannot construct instance of `Filter`: expected an object")
    name = raw.get("propertyName")
    operator = raw.get("operator")
    if not name or not operator:
        raise _json_position_error("Cannot build Filter, some of required attributes are not set "
                                   "[propertyName, operator]")
    operator = str(operator)
    if operator not in OPERATORS:
        raise _json_position_error(
            f"Cannot deserialize value of type `FilterOperator` from String \"{operator}\": not one of the "
            f"values accepted for Enum class: [{', '.join(OPERATORS)}]")
    prop = spec.prop(str(name))
    if prop is None:
        raise SearchRequestError(
            f"There was a problem with the request: property \"{name}\" does not exist on {spec.name}. "
            f"Check the name with GET /crm/v3/properties/{spec.name}.",
            sub_category="crm.search.PROPERTY_DOESNT_EXIST", context={"propertyName": [str(name)]})
    values = raw.get("values")
    parsed = Filter(prop, operator, _as_text(raw.get("value")), _as_text(raw.get("highValue")),
                    tuple(str(item) for item in values) if isinstance(values, list) else ())
    _check_filter_values(parsed)
    return parsed


def _check_filter_values(item: Filter) -> None:
    if item.operator == "BETWEEN" and (item.value is None or item.high_value is None):
        raise _json_position_error("Cannot construct instance of `com.hubspot.inbounddb.publicobject.core.v3."
                                   "search.Filter`, problem: operator BETWEEN requires a highValue")
    if item.operator in ("IN", "NOT_IN") and not item.values:
        raise _json_position_error("Cannot construct instance of `com.hubspot.inbounddb.publicobject.core.v3."
                                   f"search.Filter`, problem: operator {item.operator} requires values")
    if item.operator in ("EQ", "NEQ", "LT", "LTE", "GT", "GTE", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN") \
            and item.value is None:
        raise _json_position_error("Cannot construct instance of `com.hubspot.inbounddb.publicobject.core.v3."
                                   f"search.Filter`, problem: operator {item.operator} requires a value")


def _compare_text(codec: Codec) -> bool:
    return codec.case_insensitive or isinstance(codec, EnumCodec)


def _column(prop: Prop) -> str:
    return f"LOWER({prop.sql})" if _compare_text(prop.codec) else f"({prop.sql})"


def _scalar(prop: Prop, value: str) -> Any:
    stored = prop.codec.stored_scalar(value)
    return stored.lower() if isinstance(stored, str) and _compare_text(prop.codec) else stored


def _stored_list(prop: Prop, values: Sequence[str]) -> list[Any]:
    found: list[Any] = []
    for value in values:
        for stored in prop.codec.stored_values(value):
            found.append(stored.lower() if isinstance(stored, str) and _compare_text(prop.codec) else stored)
    return found


def _in_sql(column: str, stored: list[Any], *, negate: bool) -> tuple[str, list[Any]]:
    if not stored:  # a value that no stored value maps onto matches nothing (or everything, negated)
        return ("1=1", []) if negate else ("1=0", [])
    marks = ", ".join("?" for _ in stored)
    if negate:
        return f"({column} IS NULL OR {column} NOT IN ({marks}))", stored
    return f"{column} IN ({marks})", stored


def _token_sql(prop: Prop, value: str, *, negate: bool) -> tuple[str, list[Any]]:
    # A token is a word of the value; '*' is HubSpot's wildcard inside a token.
    spaced = f"LOWER({prop.sql})"
    for separator in TOKEN_SEPARATORS:
        spaced = f"REPLACE({spaced}, '{separator}', ' ')"
    pattern = "% " + value.lower().replace("%", "").replace("*", "%") + " %"
    clause = f"(' ' || {spaced} || ' ') LIKE ?"
    if negate:
        return f"({prop.sql} IS NULL OR NOT {clause})", [pattern]
    return clause, [pattern]


def filter_sql(item: Filter) -> tuple[str, list[Any]]:
    """One filter as a SQL condition and its parameters."""
    prop, operator = item.prop, item.operator
    column = _column(prop)
    try:
        if operator == "HAS_PROPERTY":
            return f"({prop.sql} IS NOT NULL AND CAST({prop.sql} AS TEXT) != '')", []
        if operator == "NOT_HAS_PROPERTY":
            return f"({prop.sql} IS NULL OR CAST({prop.sql} AS TEXT) = '')", []
        if operator in ("EQ", "NEQ"):
            return _in_sql(column, _stored_list(prop, [item.value or ""]), negate=operator == "NEQ")
        if operator in ("IN", "NOT_IN"):
            return _in_sql(column, _stored_list(prop, item.values), negate=operator == "NOT_IN")
        if operator in RANGE_SQL:
            return f"{column} {RANGE_SQL[operator]} ?", [_scalar(prop, item.value or "")]
        if operator == "BETWEEN":
            low = _scalar(prop, item.value or "")
            high = _scalar(prop, item.high_value or "")
            return f"{column} BETWEEN ? AND ?", [low, high]
        return _token_sql(prop, item.value or "", negate=operator == "NOT_CONTAINS_TOKEN")
    except FilterValueError as error:
        raise SearchRequestError(f"There was a problem with the request: filter on \"{prop.name}\": {error}",
                                 context={"propertyName": [prop.name]}) from error


def _groups(body: Mapping[str, Any]) -> list[list[Any]]:
    raw_groups = body.get("filterGroups")
    groups: list[list[Any]] = []
    if raw_groups is not None:
        if not isinstance(raw_groups, list):
            raise _json_position_error("Cannot deserialize value of type `java.util.ArrayList<FilterGroup>` "
                                       "from a non-array value")
        for group in raw_groups:
            filters = group.get("filters") if isinstance(group, Mapping) else None
            groups.append(list(filters or []))
    top_level = body.get("filters")  # accepted by the API without a group: all AND-ed
    if isinstance(top_level, list) and top_level:
        groups.append(list(top_level))
    return groups


def check_caps(groups: list[list[Any]], caps: SearchCaps) -> None:
    if len(groups) > caps.filter_groups_max:
        raise SearchRequestError(
            f"Too many filter groups: {len(groups)} were sent, the maximum is {caps.filter_groups_max}. "
            "Split the search into several requests.", sub_category="crm.search.TOO_MANY_FILTER_GROUPS")
    for group in groups:
        if len(group) > caps.filters_per_group_max:
            raise SearchRequestError(
                f"Too many filters in a filter group: {len(group)} were sent, the maximum is "
                f"{caps.filters_per_group_max}.", sub_category="crm.search.TOO_MANY_FILTERS_IN_GROUP")
    total = sum(len(group) for group in groups)
    if total > caps.filters_total_max:
        raise SearchRequestError(
            f"Too many filters: {total} were sent across all filter groups, the maximum is "
            f"{caps.filters_total_max}.", sub_category="crm.search.TOO_MANY_FILTERS")


def _sort(spec: ObjectSpec, body: Mapping[str, Any]) -> str:
    sorts = body.get("sorts") or []
    if not isinstance(sorts, list):
        raise _json_position_error("Cannot deserialize value of type `java.util.ArrayList<Sort>` from a "
                                   "non-array value")
    if len(sorts) > 1:
        raise SearchRequestError(f"Only one sort is supported: {len(sorts)} were sent.",
                                 sub_category="crm.search.TOO_MANY_SORTS")
    if not sorts:
        return "r.id ASC"
    sort = sorts[0]
    if isinstance(sort, str):  # the API also takes "createdate" / "-createdate"
        name, direction = sort.lstrip("-"), "DESCENDING" if sort.startswith("-") else "ASCENDING"
    elif isinstance(sort, Mapping):
        name, direction = str(sort.get("propertyName") or ""), str(sort.get("direction") or "ASCENDING")
    else:
        raise _json_position_error("Cannot construct instance of `Sort`")
    if direction not in DIRECTIONS:
        raise _json_position_error(f"Cannot deserialize value of type `SortDirection` from String "
                                   f"\"{direction}\": not one of the values accepted for Enum class: "
                                   f"[{', '.join(DIRECTIONS)}]")
    prop = spec.prop(name)
    if prop is None:
        raise SearchRequestError(f"There was a problem with the request: cannot sort on \"{name}\": no such "
                                 f"property on {spec.name}.", sub_category="crm.search.PROPERTY_DOESNT_EXIST")
    order = "ASC" if direction == "ASCENDING" else "DESC"
    # Ties keep id order, so pages of equal values are stable between identical requests.
    return f"({prop.sql}) {order}, r.id ASC"


def _limit(body: Mapping[str, Any], caps: SearchCaps) -> int:
    raw = body.get("limit", DEFAULT_SEARCH_LIMIT)
    try:
        limit = int(raw if raw is not None else DEFAULT_SEARCH_LIMIT)
    except (TypeError, ValueError):
        raise _json_position_error(f"Cannot deserialize value of type `int` from String \"{raw}\"") from None
    if limit > caps.page_max:
        raise SearchRequestError(f"The limit of {limit} is greater than the maximum of {caps.page_max} results "
                                 "per page.", sub_category="crm.search.LIMIT_TOO_LARGE")
    return max(limit, 1) if limit else DEFAULT_SEARCH_LIMIT


def _offset(body: Mapping[str, Any], caps: SearchCaps) -> int:
    raw = body.get("after")
    if raw in (None, ""):
        return 0
    try:
        offset = int(str(raw))
    except ValueError:
        raise SearchRequestError(f"There was a problem with the request: after \"{raw}\" is not a valid paging "
                                 "cursor: send the paging.next.after of the previous page.") from None
    if offset >= caps.total_max:
        raise SearchRequestError(
            f"There was a problem with the request: the search API returns at most {caps.total_max} results "
            f"for a query, and after={offset} pages beyond them. Narrow the filters (e.g. by "
            "hs_lastmodifieddate) and search again.", sub_category="crm.search.RESULT_WINDOW_EXCEEDED")
    return max(offset, 0)


def _query_sql(spec: ObjectSpec, body: Mapping[str, Any]) -> tuple[str, list[Any]]:
    query = body.get("query")
    if not query:
        return "", []
    clauses: list[str] = []
    params: list[Any] = []
    for word in str(query).split():
        per_word = []
        for name in spec.searchable_text:
            prop = spec.props[name]
            per_word.append(f"LOWER({prop.sql}) LIKE ?")
            params.append("%" + word.lower().replace("*", "%") + "%")
        clauses.append("(" + " OR ".join(per_word or ["1=0"]) + ")")
    return " AND ".join(clauses), params


def plan_search(spec: ObjectSpec, body: Any, caps: SearchCaps) -> SearchPlan:
    """Check a search body and turn it into SQL pieces (raises SearchRequestError as HubSpot answers)."""
    if not isinstance(body, Mapping):
        raise _json_position_error("Cannot construct instance of `PublicObjectSearchRequest`: expected an object")
    groups = _groups(body)
    check_caps(groups, caps)
    group_sql: list[str] = []
    params: list[Any] = []
    for group in groups:
        parts: list[str] = []
        for raw in group:
            clause, clause_params = filter_sql(parse_filter(spec, raw))
            parts.append(clause)
            params.extend(clause_params)
        if parts:
            group_sql.append("(" + " AND ".join(parts) + ")")
    where = "(" + " OR ".join(group_sql) + ")" if group_sql else "1=1"
    query_clause, query_params = _query_sql(spec, body)
    if query_clause:
        where = f"{where} AND {query_clause}"
        params.extend(query_params)
    properties = body.get("properties")
    wanted = [str(name) for name in properties] if isinstance(properties, list) and properties else None
    return SearchPlan(where, params, _sort(spec, body), _offset(body, caps), _limit(body, caps), wanted)
