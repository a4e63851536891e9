"""Keyset paging over HubSpot's search API: every request starts at offset 0.

HubSpot search sorts on one property only, and its ``after`` is an offset into a live result: records
that change between two pages shift the later pages (some are skipped, some repeated), and an offset
past 10,000 is refused.  So the connector never sends ``after``.  It asks instead, for a position
``(S, I)`` = (stamp, id) of the last record delivered:

1. ``stamp = S and id > I``, sorted by id: the rest of the records that share stamp S;
2. ``stamp > S``, sorted by stamp: the next stamps.  Ties at the page's last stamp ``T`` may be cut by
   the page limit (HubSpot does not order ties), so of a full page only the records with a stamp below
   ``T`` are delivered, and the next position is ``(T, none)``: the next query asks ``stamp >= T``.  Only
   a full page of one single stamp is read by id instead (step 1 from id 0).

Every query is filtered by position, so however many records one day (or one millisecond) holds, each
request reads at most one page from offset 0: the 10,000 cap cannot be reached, and a record updated
between pages is not lost (its new stamp is ahead of the position) but read again later.

The first load uses the same idea on the id alone: ``id > last id`` sorted by id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.hubspot.errors import HubSpotError
from connectors.hubspot.values import BadRecord, epoch_ms, is_blank, parse_instant

Search = Callable[[dict[str, Any]], dict[str, Any]]
Batch = list[dict[str, Any]]
ID_PROPERTY = "hs_object_id"


class KeysetStuck(HubSpotError):
    """A full page that would not move the position on (records without ids or stamps)."""


@dataclass(frozen=True, order=True)
class Position:
    """Everything before ``stamp_ms`` is delivered, and of that stamp the ids up to ``last_id`` (0: none)."""

    stamp_ms: int
    last_id: int = 0


@dataclass(frozen=True)
class Query:
    """What every search of one object shares: its stamp property, properties, filters and page size."""

    stamp: str
    properties: Sequence[str]
    filters: Sequence[Mapping[str, Any]] = ()
    limit: int = 200

    def body(self, filters: list[dict[str, Any]], sort_by: str) -> dict[str, Any]:
        return {"filterGroups": [{"filters": [*map(dict, self.filters), *filters]}],
                "sorts": [{"propertyName": sort_by, "direction": "ASCENDING"}],
                "properties": list(self.properties), "limit": self.limit}


def numeric_id(raw: Mapping[str, Any]) -> int | None:
    value = raw.get("id")
    return int(value) if isinstance(value, str) and value.strip().isdigit() else None


def stamp_ms(raw: Mapping[str, Any], stamp: str) -> int | None:
    props = raw.get("properties") or {}
    value = props.get(stamp) if not is_blank(props.get(stamp)) else raw.get("updatedAt")
    try:
        moment = parse_instant(value, stamp)
    except BadRecord:
        return None
    return epoch_ms(moment) if moment is not None else None


def changed_since(search: Search, query: Query, start: Position) -> Iterator[tuple[Batch, Position]]:
    """Pages of records with a stamp at or after ``start`` (minus what ``start`` says is delivered), each
    with the position it brings the reader to."""
    position, stamp_done = start, False
    while True:
        if position.last_id and not stamp_done:
            position = yield from _rest_of_stamp(search, query, position)
            stamp_done = True
        operator = "GT" if stamp_done else "GTE"
        results, complete = _page(search(query.body(
            [{"propertyName": query.stamp, "operator": operator, "value": str(position.stamp_ms)}], query.stamp)),
            query.limit)
        if not results:
            return
        stamped = [(stamp_ms(raw, query.stamp), raw) for raw in results]
        top = max((ms for ms, _ in stamped if ms is not None), default=position.stamp_ms)
        if complete:  # the last page: nothing was cut
            yield results, Position(top, max((numeric_id(raw) or 0 for ms, raw in stamped if ms == top), default=0))
            return
        if top <= position.stamp_ms:  # a whole page of one stamp: read that stamp by id
            if stamp_done:
                raise KeysetStuck(f"{query.stamp} search: a full page of records without a readable {query.stamp}; "
                                  "the position cannot move on")
            position = yield from _rest_of_stamp(search, query, Position(position.stamp_ms))
            stamp_done = True
            continue
        # Records at the top stamp may continue past the page: leave them all to the next query.
        position, stamp_done = Position(top), False
        yield [raw for ms, raw in stamped if ms is None or ms < top], position


def _rest_of_stamp(search: Search, query: Query, position: Position) -> Iterator[tuple[Batch, Position]]:
    """Pages of the records sharing ``position.stamp_ms`` with an id above ``position.last_id``."""
    while True:
        filters = [{"propertyName": query.stamp, "operator": "EQ", "value": str(position.stamp_ms)}]
        if position.last_id:
            filters.append({"propertyName": ID_PROPERTY, "operator": "GT", "value": str(position.last_id)})
        results, complete = _page(search(query.body(filters, ID_PROPERTY)), query.limit)
        if complete:
            if results:
                yield results, _after(position, results)
            return _after(position, results)
        moved = _after(position, results)
        if moved.last_id <= position.last_id:
            raise KeysetStuck(f"{query.stamp} search: a full page of records without readable ids")
        position = moved
        yield results, position


def _after(position: Position, results: Sequence[Mapping[str, Any]]) -> Position:
    last = max((numeric_id(raw) or 0 for raw in results), default=0)
    return Position(position.stamp_ms, max(last, position.last_id))


def by_id(search: Search, query: Query, after_id: int, since: datetime | None) -> Iterator[tuple[Batch, int, bool]]:
    """The first load: pages of records with an id above ``after_id`` (and changed since ``since``), in id
    order, each with the last id read and whether it was the last page."""
    while True:
        filters = [{"propertyName": ID_PROPERTY, "operator": "GT", "value": str(after_id)}]
        if since is not None:
            filters.append({"propertyName": query.stamp, "operator": "GTE", "value": str(epoch_ms(since))})
        results, last = _page(search(query.body(filters, ID_PROPERTY)), query.limit)
        moved = max([after_id, *(numeric_id(raw) or 0 for raw in results)])
        if not last and moved <= after_id:
            raise KeysetStuck("first load: a full page of records without readable ids")
        after_id = moved
        yield results, after_id, last
        if last:
            return


def _page(answer: Mapping[str, Any], limit: int) -> tuple[Batch, bool]:
    """A search answer's records, and whether they are all there are (a short page, or ``total`` says so:
    that saves asking again for an empty page)."""
    raw_results = answer.get("results")
    results = [raw for raw in raw_results if isinstance(raw, dict)] if isinstance(raw_results, list) else []
    total = answer.get("total")
    complete = len(results) < limit or (isinstance(total, int) and total <= len(results))
    return results, complete
