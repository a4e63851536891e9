"""The plugin host: a factory that builds a pluggy manager and loads plugins one at a time.

Built-in plugins are published under the same entry-point group (``kpi_agent``) as third-party ones, in
this project's ``pyproject.toml``; the core never imports a plugin module directly.  Loading follows the
lessons of llm#1280 and dlt: a plugin that fails to import, or that implements a hook that does not exist
(a typo pluggy would otherwise ignore), is reported by name and left out while the others load.

Environment switches:

- ``KPI_AGENT_LOAD_PLUGINS``: a comma-separated allow-list of plugin names; an empty string loads only
  the built-in plugins (Datasette and llm semantics).
- ``KPI_AGENT_STRICT_PLUGINS=1``: a plugin that fails to load is an error, for plugin development.
- ``KPI_AGENT_TRACE_PLUGINS=1``: every hook call is written to the ``agent.plugins.trace`` debug log.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from agent import hookspecs

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
BUILTIN_DISTRIBUTION = "sales-kpi-agent"
STRICT_ENV = "KPI_AGENT_STRICT_PLUGINS"
ALLOW_ENV = "KPI_AGENT_LOAD_PLUGINS"
TRACE_ENV = "KPI_AGENT_TRACE_PLUGINS"


class PluginError(Exception):
    """A plugin could not be loaded or violates the hook contract."""


@dataclass(frozen=True)
class PluginLoadError:
    """Why one plugin was left out; shown by ``kpi-agent plugins`` and logged at start-up."""

    name: str
    distribution: str | None
    message: str


@dataclass(frozen=True)
class PluginInfo:
    """What ``kpi-agent plugins`` shows of one loaded plugin."""

    name: str
    version: str | None
    origin: str
    hooks: tuple[str, ...]
    enabled: bool = True


@dataclass(frozen=True)
class HookImplCall:
    """One plugin's implementation of a hook, callable on its own so its failure stays its own."""

    plugin_name: str
    function: Callable[..., Any]
    argnames: tuple[str, ...]

    def __call__(self, **kwargs: Any) -> Any:
        # Argument pruning, as pluggy does: an implementation may take any subset of the spec's arguments.
        return self.function(**{name: kwargs[name] for name in self.argnames})


@dataclass
class PluginHost:
    """A pluggy manager plus what the agent needs around it: provenance, load errors, isolated calls."""

    manager: pluggy.PluginManager
    load_errors: list[PluginLoadError] = field(default_factory=list)
    distributions: dict[str, metadata.Distribution | None] = field(default_factory=dict)
    blocked: frozenset[str] = frozenset()

    def register(self, plugin: object, name: str, distribution: metadata.Distribution | None = None) -> bool:
        """Register one plugin; on a contract violation leave it out, record why and return False."""
        if isinstance(plugin, type):
            msg = f"plugin {name!r} is a class, not an instance: register {plugin.__name__}() instead"
            return self._reject(name, distribution, msg)
        if name in self.blocked:
            self.manager.set_blocked(name)
            self.distributions[name] = distribution
            return False
        try:
            self.manager.register(plugin, name=name)
            self._check_hook_names(plugin, name)
        except (ValueError, pluggy.PluginValidationError, PluginError) as error:
            if self.manager.is_registered(plugin):
                self.manager.unregister(plugin)
            return self._reject(name, distribution, str(error))
        self.distributions[name] = distribution
        return True

    def impls(self, hook_name: str) -> list[HookImplCall]:
        """The implementations of ``hook_name`` in call order, each callable on its own."""
        caller = getattr(self.manager.hook, hook_name)
        # get_hookimpls() lists them in registration order; pluggy calls them last-registered first.
        return [
            HookImplCall(impl.plugin_name, impl.function, tuple(impl.argnames))
            for impl in reversed(caller.get_hookimpls())
        ]

    def plugin_infos(self) -> list[PluginInfo]:
        """Every plugin found, loaded or blocked, sorted by name."""
        infos = [self._info(name) for name in self.distributions]
        return sorted(infos, key=lambda info: info.name)

    def _info(self, name: str) -> PluginInfo:
        plugin = self.manager.get_plugin(name)
        hooks: tuple[str, ...] = ()
        if plugin is not None:
            callers = self.manager.get_hookcallers(plugin) or []
            hooks = tuple(sorted(caller.name for caller in callers))
        dist = self.distributions.get(name)
        origin = _origin(dist)
        version = dist.version if dist is not None else None
        return PluginInfo(name, version, origin, hooks, enabled=not self.manager.is_blocked(name))

    def _check_hook_names(self, plugin: object, name: str) -> None:
        known = _specified_hook_names(self.manager)
        for hook_name in _implemented_hook_names(self.manager, plugin):
            if hook_name in known:
                continue
            close = difflib.get_close_matches(hook_name, known, n=1)
            hint = f" — did you mean {close[0]!r}?" if close else ""
            raise PluginError(f"plugin {name!r} implements unknown hook {hook_name!r}{hint}")
        self.manager.check_pending()

    def _reject(self, name: str, distribution: metadata.Distribution | None, message: str) -> bool:
        error = PluginLoadError(name, _dist_name(distribution), message)
        self.load_errors.append(error)
        log.warning("plugin %s left out: %s", name, message)
        if os.environ.get(STRICT_ENV) == "1":
            raise PluginError(f"plugin {name!r}: {message}")
        return False


def create_plugin_manager(
    *,
    load_entry_points: bool = True,
    plugins: Sequence[tuple[str, object]] = (),
    blocked: Iterable[str] = (),
) -> PluginHost:
    """Build a fresh plugin host: the hook specs, the installed entry points, then ``plugins``.

    Args:
        load_entry_points: load the ``kpi_agent`` entry points (built-in and third-party plugins).
        plugins: extra ``(name, plugin)`` pairs to register, e.g. test plugins.
        blocked: plugin names not to load (the config's ``[plugins] disabled``).
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    if os.environ.get(TRACE_ENV) == "1":
        trace_log = logging.getLogger("agent.plugins.trace")
        manager.trace.root.setwriter(trace_log.debug)
        manager.enable_tracing()
    host = PluginHost(manager, blocked=frozenset(blocked))
    if load_entry_points:
        for entry_point in _allowed(entry_points()):
            _load_entry_point(host, entry_point)
    for name, plugin in plugins:
        host.register(plugin, name)
    return host


def entry_points() -> list[metadata.EntryPoint]:
    """The installed ``kpi_agent`` entry points, built-in ones first, then by name."""
    found = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    return sorted(found, key=lambda ep: (_dist_name(ep.dist) != BUILTIN_DISTRIBUTION, ep.name))


def _allowed(found: list[metadata.EntryPoint]) -> Iterator[metadata.EntryPoint]:
    allow = os.environ.get(ALLOW_ENV)
    names = {name.strip() for name in allow.split(",") if name.strip()} if allow is not None else None
    for entry_point in found:
        builtin = _dist_name(entry_point.dist) == BUILTIN_DISTRIBUTION
        if names is None or builtin or entry_point.name in names:
            yield entry_point


def _load_entry_point(host: PluginHost, entry_point: metadata.EntryPoint) -> None:
    try:
        plugin = entry_point.load()
    except Exception as error:  # any import-time failure of third-party code must not stop the agent
        message = f"could not be imported ({type(error).__name__}: {error}); fix or uninstall it"
        host._reject(entry_point.name, entry_point.dist, message)
        return
    host.register(plugin, entry_point.name, entry_point.dist)


def _implemented_hook_names(manager: pluggy.PluginManager, plugin: object) -> list[str]:
    names = []
    for attr in dir(plugin):
        if manager.parse_hookimpl_opts(plugin, attr) is not None:
            names.append(attr)
    return names


def _specified_hook_names(manager: pluggy.PluginManager) -> list[str]:
    return sorted(name for name, caller in vars(manager.hook).items() if getattr(caller, "spec", None))


def _dist_name(dist: metadata.Distribution | None) -> str | None:
    return dist.metadata["Name"] if dist is not None else None


def _origin(dist: metadata.Distribution | None) -> str:
    name = _dist_name(dist)
    if name is None:
        return "registered"
    return "built-in" if name == BUILTIN_DISTRIBUTION else f"package {name}"


def plugin_module_name(plugin: object) -> str:
    """A readable name for error messages: the module's name for a module plugin."""
    return plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__name__
