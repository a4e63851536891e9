"""Hook markers and specifications: the whole plugin contract of the agent, and nothing else.

Every hook is named ``verb_noun`` from one grammar:

- ``register_<things>`` hooks are collecting hooks.  They receive a host-owned ``register`` callback and
  call it once per thing they contribute; they return nothing.  The host tags every registered thing with
  the plugin that registered it, so conflicts are reported by plugin name and never settled by hook order.
- ``before_<event>`` / ``after_<event>`` / ``on_<event>_error`` hooks observe the agent's lifecycle
  (added by the issues that build the sync and delivery loops).

Implementations may accept any subset of a hook's arguments (pluggy's argument pruning), so arguments can
be added to a hook without breaking existing plugins; an argument is never renamed or removed without a
deprecation period.  ``PLUGIN_API_VERSION`` is bumped (minor) when a hook or argument is added and (major)
when one is removed after its deprecation; see ``docs/plugins.md``.

Lifecycle::

    create_plugin_manager()            # entry points of group "kpi_agent", one at a time
      └─ register_config(register)     # each plugin declares its own config section (validated by `config check`)
      └─ register_kpis(register)       # KPI definitions
      └─ register_connectors(register) # CRM connector factories
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # the types are documentation; importing them here would make the spec module heavy
    from agent.config import ConfigSection

PROJECT_NAME = "kpi_agent"
"""The pluggy project name, which is also the entry-point group plugins are published under."""

PLUGIN_API_VERSION = "1.0"
"""The version of this contract; a plugin may check it (major changes break, minor ones add)."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_config(register: Callable[[ConfigSection], None]) -> None:
    """Declare the plugin's own configuration section.

    The section ``[plugin_config.<name>]`` of the agent's TOML file is validated against the declared
    pydantic model by ``kpi-agent config check``; an error names the exact key.

    Args:
        register: call it with one :class:`agent.config.ConfigSection` per section the plugin reads.

    Returns:
        Nothing; sections are passed to ``register``.

    .. versionadded:: 1.0
    """


@hookspec
def register_kpis(register: Callable[[Any], None]) -> None:
    """Contribute KPI definitions.

    Args:
        register: call it with one ``agent.kpi.KpiDefinition`` per KPI.  Two plugins registering the
            same key are both disabled with an error naming them, unless the config's
            ``[plugins] kpi_owner`` says which one wins.

    Returns:
        Nothing; definitions are passed to ``register``.

    .. versionadded:: 1.0
    """


@hookspec
def register_connectors(register: Callable[[Any], None]) -> None:
    """Contribute CRM connector factories (Salesforce, HubSpot, or a third-party source).

    Args:
        register: call it with one ``agent.sync.connector.ConnectorSpec`` per connector kind; the ``kind``
            is what ``[connections.<name>] kind = "..."`` selects in the config.

    Returns:
        Nothing; connector specs are passed to ``register``.

    .. versionadded:: 1.0
    """
