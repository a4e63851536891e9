"""Collecting KPI definitions from plugins, with provenance and conflict rules.

Each plugin's ``register_kpis`` is called on its own, so a plugin that raises loses only its own KPIs.
Two plugins registering one key are both disabled with an error naming them, unless the config's
``[plugins] kpi_owner`` names the one that wins — that is how a built-in KPI is overridden on purpose.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent.kpi.sources import SOURCES
from agent.kpi.spec import Aggregate, AsOf, Custom, Derived, Formula, KpiDefinition, Previous, Ratio

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.plugins import PluginHost


@dataclass(frozen=True)
class RegisteredKpi:
    """A definition and the plugin that registered it."""

    key: str
    plugin: str
    definition: KpiDefinition


@dataclass(frozen=True)
class KpiRegistryError:
    """A KPI or plugin left out, and why: ``kind`` is duplicate, register_failed or invalid."""

    kind: str
    key: str | None
    plugins: tuple[str, ...]
    message: str


@dataclass
class KpiRegistry:
    """The KPIs the loaded plugins provide.

    ``definitions``: key → :class:`RegisteredKpi` for every KPI that will be computed (enabled, no
    conflict, valid).  ``registered``: everything registered, including losers of conflicts and
    KPIs disabled in config.  ``errors``: what was left out and why.
    """

    definitions: dict[str, RegisteredKpi] = field(default_factory=dict)
    registered: list[RegisteredKpi] = field(default_factory=list)
    errors: list[KpiRegistryError] = field(default_factory=list)
    disabled: frozenset[str] = frozenset()
    hidden: dict[str, RegisteredKpi] = field(default_factory=dict)
    """KPIs disabled in config but still valid: computed (not stored) when a derived KPI needs them."""

    def owners(self) -> dict[str, str]:
        """KPI key → the plugin whose definition is used (for ``kpi-agent plugins``)."""
        return {key: entry.plugin for key, entry in self.definitions.items()}

    def by_plugin(self) -> dict[str, list[str]]:
        """Plugin → every key it registered, used or not."""
        found: dict[str, list[str]] = defaultdict(list)
        for entry in self.registered:
            found[entry.plugin].append(entry.key)
        return {plugin: sorted(keys) for plugin, keys in found.items()}

    def provides(self, key: str) -> bool:
        """Whether some plugin registers ``key`` (even if disabled): what ``config check`` asks."""
        return any(entry.key == key for entry in self.registered)

    def known_keys(self) -> set[str]:
        return {entry.key for entry in self.registered}

    def __iter__(self) -> Iterator[RegisteredKpi]:
        return iter(self.definitions.values())

    def get(self, key: str) -> KpiDefinition:
        return self.definitions[key].definition


def collect_kpis(host: PluginHost, config: AgentConfig | None = None) -> KpiRegistry:
    """Call every plugin's ``register_kpis`` (each on its own) and settle keys, owners and validity."""
    disabled_plugins = set(config.plugins.disabled) if config else set()
    owners: Mapping[str, str] = config.plugins.kpi_owner if config else {}
    registry = KpiRegistry(disabled=frozenset(config.kpis.disabled) if config else frozenset())
    for impl in host.impls("register_kpis"):
        if impl.plugin_name in disabled_plugins:
            continue
        registry.registered += _call_plugin(impl, registry.errors)
    chosen = _settle_duplicates(registry.registered, owners, registry.errors)
    valid = _valid(chosen, registry.errors)
    usable = _with_inputs(valid, registry.errors)
    registry.definitions = {entry.key: entry for entry in usable if entry.key not in registry.disabled}
    # A derived KPI may need one that config disabled: keep it computable, but do not store it.
    registry.hidden = {key: entry for key, entry in valid.items() if key in registry.disabled}
    return registry


def _call_plugin(impl: object, errors: list[KpiRegistryError]) -> list[RegisteredKpi]:
    plugin = impl.plugin_name  # type: ignore[attr-defined]
    collected: list[RegisteredKpi] = []

    def register(definition: KpiDefinition) -> None:
        if not isinstance(definition, KpiDefinition):
            message = f"registered a {type(definition).__name__}; pass agent.kpi.KpiDefinition instances"
            errors.append(KpiRegistryError("invalid", None, (plugin,), message))
            return
        collected.append(RegisteredKpi(definition.key, plugin, definition))

    try:
        impl(register=register)  # type: ignore[operator]
    except Exception as error:  # a plugin's bug loses that plugin's KPIs, not everyone's
        message = f"register_kpis raised {type(error).__name__}: {error}; its KPIs are left out"
        errors.append(KpiRegistryError("register_failed", None, (plugin,), message))
        return []
    return collected


def _settle_duplicates(
    entries: Iterable[RegisteredKpi], owners: Mapping[str, str], errors: list[KpiRegistryError]
) -> dict[str, RegisteredKpi]:
    by_key: dict[str, list[RegisteredKpi]] = defaultdict(list)
    for entry in entries:
        by_key[entry.key].append(entry)
    chosen: dict[str, RegisteredKpi] = {}
    for key, candidates in by_key.items():
        winner = _winner(key, candidates, owners.get(key), errors)
        if winner is not None:
            chosen[key] = winner
    return chosen


def _winner(
    key: str, candidates: list[RegisteredKpi], owner: str | None, errors: list[KpiRegistryError]
) -> RegisteredKpi | None:
    plugins = tuple(entry.plugin for entry in candidates)
    if owner is not None:
        for entry in candidates:
            if entry.plugin == owner:
                return entry
        message = (
            f"[plugins] kpi_owner.{key} = {owner!r}, but that plugin does not register {key!r} "
            f"(registered by {', '.join(plugins)})"
        )
        errors.append(KpiRegistryError("duplicate" if len(candidates) > 1 else "invalid", key, plugins, message))
        return candidates[0] if len(candidates) == 1 else None
    if len(candidates) == 1:
        return candidates[0]
    names = " and ".join(repr(plugin) for plugin in plugins)
    message = (
        f"KPI {key!r} is registered by {names}; both are disabled. "
        f"Set [plugins] kpi_owner.{key} = \"<plugin>\" to choose one, or disable a plugin."
    )
    errors.append(KpiRegistryError("duplicate", key, plugins, message))
    return None


def _valid(chosen: Mapping[str, RegisteredKpi], errors: list[KpiRegistryError]) -> dict[str, RegisteredKpi]:
    valid = {}
    for key, entry in chosen.items():
        problems = entry.definition.problems() + _source_problems(entry.definition)
        if problems:
            message = f"KPI {key!r} from plugin {entry.plugin!r} is left out: " + "; ".join(problems)
            errors.append(KpiRegistryError("invalid", key, (entry.plugin,), message))
            continue
        valid[key] = entry
    return valid


def _with_inputs(valid: dict[str, RegisteredKpi], errors: list[KpiRegistryError]) -> list[RegisteredKpi]:
    """Drop derived KPIs whose inputs are missing (repeatedly, as a drop can orphan another)."""
    kept = dict(valid)
    changed = True
    while changed:
        changed = False
        for key, entry in list(kept.items()):
            compute = entry.definition.compute
            missing = [name for name in compute.inputs if name not in kept] if isinstance(compute, Derived) else []
            if missing:
                message = (
                    f"KPI {key!r} from plugin {entry.plugin!r} needs {', '.join(missing)}, which no plugin provides"
                )
                errors.append(KpiRegistryError("invalid", key, (entry.plugin,), message))
                del kept[key]
                changed = True
    return list(kept.values())


def measures_of(definition: KpiDefinition) -> list[object]:
    compute = definition.compute
    if isinstance(compute, Ratio):
        return [compute.numerator, compute.denominator]
    if isinstance(compute, Formula):
        return [measure for _, measure in compute.measures]
    if isinstance(compute, Derived):
        return []
    return [compute]


def _source_problems(definition: KpiDefinition) -> list[str]:
    problems = []
    for measure in measures_of(definition):
        inner = measure.measure if isinstance(measure, Previous) else measure
        if isinstance(inner, Custom) or not isinstance(inner, (Aggregate, AsOf)):
            continue
        source = SOURCES.get(inner.source)
        if source is None:
            problems.append(f"no source {inner.source!r}; use one of {', '.join(sorted(SOURCES))}")
            continue
        columns = {inner.value} if inner.value else set()
        columns |= {condition.column for condition in inner.where}
        try:
            source.check_columns(frozenset(columns))
            if isinstance(inner, Aggregate) and inner.at is not None:
                source.time_kind(inner.at)
        except LookupError as error:
            problems.append(str(error))
        if isinstance(inner, Aggregate) and inner.at is None and source.kind == "event":
            problems.append(f"Aggregate over event source {inner.source!r} needs at= (one of its time columns)")
        if isinstance(inner, AsOf) and source.kind != "state":
            problems.append(f"AsOf needs a state source (pipeline, contracts), not {inner.source!r}")
    return problems
