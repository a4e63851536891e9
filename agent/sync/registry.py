"""Collecting connector kinds from plugins through ``register_connectors``.

Each plugin's implementation is called on its own (``host.impls``), with a ``register`` callback owned
here, so every spec is tagged with the plugin that registered it and one broken plugin costs only its own
connectors.  Two plugins registering the same ``kind`` both lose it, with an error naming both: a conflict
is never settled by hook order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from agent.plugins import PluginHost
from agent.sync.connector import ConnectorSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectorRegistrationError:
    """Why a plugin's connector (or the whole plugin's contribution) was left out."""

    plugin: str
    message: str


class ConnectorRegistry(dict[str, ConnectorSpec]):
    """Connector specs by kind, with where each came from and what went wrong (``errors``)."""

    def __init__(self) -> None:
        super().__init__()
        self.origins: dict[str, str] = {}
        self.errors: list[ConnectorRegistrationError] = []

    def plugin_of(self, kind: str) -> str | None:
        return self.origins.get(kind)


def collect_connectors(host: PluginHost) -> ConnectorRegistry:
    """Every connector kind the loaded plugins register; problems are in ``.errors`` by plugin."""
    registry = ConnectorRegistry()
    claims: dict[str, list[tuple[str, ConnectorSpec]]] = {}
    for impl in host.impls("register_connectors"):
        contributed: list[ConnectorSpec] = []
        problems: list[str] = []

        def register(spec: object, plugin: str = impl.plugin_name, bag: list[ConnectorSpec] = contributed,
                     issues: list[str] = problems) -> None:
            problem = _invalid(spec)
            if problem:
                issues.append(problem)
            else:
                bag.append(spec)  # type: ignore[arg-type]

        try:
            impl(register=register)
        except Exception as error:  # a plugin's bug must not stop the others' connectors
            registry.errors.append(ConnectorRegistrationError(
                impl.plugin_name, f"register_connectors raised {type(error).__name__}: {error}; its connectors "
                                  "are left out"))
            continue
        registry.errors += [ConnectorRegistrationError(impl.plugin_name, problem) for problem in problems]
        for spec in contributed:
            claims.setdefault(spec.kind, []).append((impl.plugin_name, spec))
    for kind, claimants in claims.items():
        plugins = sorted({plugin for plugin, _ in claimants})
        if len(plugins) > 1:
            for plugin in plugins:
                registry.errors.append(ConnectorRegistrationError(
                    plugin, f"connector kind {kind!r} is registered by {' and '.join(plugins)}; both are left out "
                            "(disable one of the plugins in [plugins] disabled)"))
            continue
        plugin, spec = claimants[-1]
        registry[kind] = spec
        registry.origins[kind] = plugin
    for error in registry.errors:
        log.warning("connector plugin %s: %s", error.plugin, error.message)
    return registry


def _invalid(spec: object) -> str | None:
    if not isinstance(spec, ConnectorSpec):
        return f"register() was given {type(spec).__name__}, not agent.sync.connector.ConnectorSpec"
    if not spec.kind or not spec.kind.replace("_", "").replace("-", "").isalnum():
        return f"connector kind {spec.kind!r} must be a short name of letters, digits, '-' or '_'"
    if not callable(spec.factory):
        return f"connector kind {spec.kind!r}: factory is not callable"
    unknown = [name for name in spec.object_tables if spec.objects and name not in spec.objects]
    if unknown:
        return f"connector kind {spec.kind!r}: object_tables names objects it does not list: {unknown}"
    return None
