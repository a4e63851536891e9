"""The agent's configuration: a TOML file, validated into frozen pydantic models.

Every problem is reported with the exact key it is about (``connections.crm_eu.passwrd``,
``quotas[2].team``) and a hint.  Secrets (passwords, tokens, keys) are ``SecretStr`` and may be given as
``"env:VARIABLE"`` to read them from the environment; pydantic is told never to echo input values in its
errors, so a validation error cannot leak a secret either.  ``config.example.toml`` documents every key.
"""

from __future__ import annotations

import difflib
import os
import tomllib
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agent.models import ACTIVITY_KINDS, DEAL_TYPES

Grain = Literal["day", "week", "month", "quarter", "year"]
DEFAULT_DATABASE_URL = "sqlite:///~/.kpi-agent/cache.sqlite"
ENV_PREFIX = "env:"
UNSET_ENV_CONTEXT = "unset_env_variables"


class ConfigError(Exception):
    """The configuration has problems; ``problems`` lists each with its key."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {problem.key}: {problem.message}" for problem in problems)
        super().__init__(f"{source} has {len(problems)} problem(s):\n{lines}")


@dataclass(frozen=True)
class ConfigProblem:
    key: str
    message: str


@dataclass(frozen=True)
class ConfigSection:
    """A plugin's own config section, ``[plugin_config.<name>]``, declared through ``register_config``."""

    name: str
    model: type[BaseModel]
    description: str = ""


class _Model(BaseModel):
    # hide_input_in_errors: a wrong value may be a secret pasted in the wrong place.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


def _resolve_env(value: Any, info: ValidationInfo) -> Any:
    if not (isinstance(value, str) and value.startswith(ENV_PREFIX)):
        return value
    variable = value[len(ENV_PREFIX) :]
    if variable in os.environ:
        return os.environ[variable]
    unset = (info.context or {}).get(UNSET_ENV_CONTEXT)
    if unset is None:
        raise ValueError(f"environment variable {variable} is not set")
    # `config check` may run where the agent's secrets are not exported: note it, don't fail.
    unset.append(variable)
    return f"<{variable} not set>"


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}; use an IANA name such as 'Asia/Jakarta'") from None
    return name


def _check_cron(expression: str) -> str:
    from apscheduler.triggers.cron import CronTrigger  # APScheduler's parser is the one that will run it

    try:
        CronTrigger.from_crontab(expression)
    except ValueError as error:
        raise ValueError(f"bad cron string {expression!r} ({error}); e.g. '0 8 * * MON-FRI'") from None
    return expression


class AgentSection(_Model):
    timezone: str = "UTC"
    home_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    database_url: SecretStr = SecretStr(DEFAULT_DATABASE_URL)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    _timezone = field_validator("timezone")(_check_timezone)
    _env = field_validator("database_url", mode="before")(_resolve_env)


class ScheduleSection(_Model):
    """Cron strings (minute hour day month weekday) in the org timezone."""

    sync: str = "*/15 * * * *"
    kpis: str = "5 * * * *"
    digest: str = "0 8 * * MON-FRI"
    nudges: str = "0 14 * * MON-FRI"

    _cron = field_validator("sync", "kpis", "digest", "nudges")(_check_cron)


class PluginsSection(_Model):
    disabled: list[str] = []
    kpi_owner: dict[str, str] = {}


class KpisSection(_Model):
    grain: Grain = "month"
    history_periods: int = Field(default=12, ge=1, le=120)
    recompute_periods: int = Field(default=2, ge=0, le=60)
    disabled: list[str] = []
    stale_days: int = Field(default=30, ge=1)
    significance_lag: int = Field(default=1, ge=0, le=12)
    significance_periods: int = Field(default=12, ge=2, le=120)
    significance_min_pairs: int = Field(default=20, ge=3)
    forecast_source: Literal["snapshot", "crm_commit"] = "snapshot"
    dimensions: list[Literal["lead_source", "region", "pipeline", "crm", "deal_type", "product", "stage"]] = []


def _check_mapping_values(mapping: dict[str, str], allowed: tuple[str, ...], what: str) -> dict[str, str]:
    for crm_value, kind in mapping.items():
        if kind not in allowed:
            raise ValueError(f"{crm_value!r} maps to {kind!r}, which is not {what}; use one of {', '.join(allowed)}")
    return mapping


class _ValueMapping(_Model):
    """CRM values → the cache's kinds; every target must be a kind the cache knows."""

    deal_types: dict[str, str] = {}
    activity_types: dict[str, str] = {}

    @field_validator("deal_types")
    @classmethod
    def _deal_types(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_mapping_values(value, DEAL_TYPES, "a deal type")

    @field_validator("activity_types")
    @classmethod
    def _activity_types(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_mapping_values(value, ACTIVITY_KINDS, "an activity kind")


class SalesforceMapping(_ValueMapping):
    """Which Salesforce fields and values mean what; the defaults fit a standard org."""

    region_field: str = "Region__c"
    deal_types: dict[str, str] = {
        "New Customer": "new_business",
        "New Business": "new_business",
        "Existing Customer - Upgrade": "upsell",
        "Existing Customer - Cross-Sell": "cross_sell",
        "Existing Customer - Replacement": "other",
        "Existing Customer - Downgrade": "other",
        "Renewal": "renewal",
    }
    activity_types: dict[str, str] = {"Demo": "demo", "Proposal": "proposal", "Quote": "proposal"}
    mql_statuses: list[str] = ["Working - Contacted"]
    sql_statuses: list[str] = ["Closed - Converted"]
    mql_date_field: str | None = None
    sql_date_field: str | None = None
    recurring_term_field: str | None = None
    recurring_frequency_field: str | None = None


class HubSpotMapping(_ValueMapping):
    """Which HubSpot properties and values mean what; the defaults fit a standard portal."""

    region_property: str = "region"
    deal_types: dict[str, str] = {
        "newbusiness": "new_business",
        "existingbusiness": "upsell",
        "upsell": "upsell",
        "crosssell": "cross_sell",
        "renewal": "renewal",
    }
    activity_types: dict[str, str] = {"DEMO": "demo", "Demo": "demo", "PROPOSAL": "proposal", "Proposal": "proposal"}


class _SyncOptions(_Model):
    initial_lookback_days: int = Field(default=730, ge=1)
    overlap_seconds: int = Field(default=300, ge=0)
    exclude_owner_ids: list[str] = []
    pipelines: list[str] = []
    reconcile_every_hours: int = Field(default=24, ge=1)
    api_budget_share: float = Field(default=0.5, gt=0, le=1)


class SalesforceConnection(_SyncOptions):
    kind: Literal["salesforce"]
    auth: Literal["password", "client_credentials", "jwt", "session"] = "password"
    instance_url: str | None = None
    domain: str = "login"
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    consumer_key: str | None = None
    consumer_secret: SecretStr | None = None
    private_key_file: Path | None = None
    session_id: SecretStr | None = None
    api_version: str = Field(default="59.0", pattern=r"^\d+\.\d$")
    ca_bundle: Path | None = None
    record_types: list[str] = []
    bulk_threshold: int = Field(default=10_000, ge=0)
    mapping: SalesforceMapping = SalesforceMapping()

    _env = field_validator("password", "security_token", "consumer_secret", "session_id", mode="before")(
        _resolve_env
    )

    @model_validator(mode="after")
    def _auth_has_its_keys(self) -> SalesforceConnection:
        needed = {
            "password": ("username", "password"),
            "client_credentials": ("consumer_key", "consumer_secret"),
            "jwt": ("username", "consumer_key", "private_key_file"),
            "session": ("session_id", "instance_url"),
        }[self.auth]
        missing = [key for key in needed if getattr(self, key) is None]
        if missing:
            raise ValueError(f"auth = {self.auth!r} needs {', '.join(missing)}")
        return self


class HubSpotConnection(_SyncOptions):
    kind: Literal["hubspot"]
    base_url: str = "https://api.hubapi.com"
    access_token: SecretStr
    ca_bundle: Path | None = None
    search_requests_per_second: float = Field(default=4.0, gt=0, le=10)
    mapping: HubSpotMapping = HubSpotMapping()

    _env = field_validator("access_token", mode="before")(_resolve_env)


ConnectionConfig = Annotated[SalesforceConnection | HubSpotConnection, Field(discriminator="kind")]


class TeamConfig(_Model):
    name: str
    members: list[str]
    manager: str | None = None
    region: str | None = None

    @field_validator("members")
    @classmethod
    def _has_members(cls, members: list[str]) -> list[str]:
        if not members:
            raise ValueError("a team needs at least one member: list its reps' emails, or remove the team")
        return [member.strip().lower() for member in members]


class QuotaConfig(_Model):
    rep: str | None = None
    team: str | None = None
    kpi: str = "revenue"
    grain: Grain = "month"
    start: date
    amount: float = Field(ge=0)

    @model_validator(mode="after")
    def _one_scope(self) -> QuotaConfig:
        if (self.rep is None) == (self.team is None):
            raise ValueError("a quota names exactly one of rep (an email) or team (a key of [teams])")
        return self


class CostConfig(_Model):
    kind: Literal["sales", "marketing"]
    grain: Grain = "month"
    start: date
    amount: float = Field(ge=0)
    team: str | None = None


class SlackSection(_Model):
    token: SecretStr | None = None
    base_url: str | None = None
    digest_channel: str = "#sales"
    nudges_as_dm: bool = True

    _env = field_validator("token", mode="before")(_resolve_env)


class AgentConfig(_Model):
    agent: AgentSection = AgentSection()
    schedule: ScheduleSection = ScheduleSection()
    plugins: PluginsSection = PluginsSection()
    kpis: KpisSection = KpisSection()
    connections: dict[str, ConnectionConfig] = {}
    teams: dict[str, TeamConfig] = {}
    quotas: list[QuotaConfig] = []
    costs: list[CostConfig] = []
    unit_costs: dict[str, float] = {}
    slack: SlackSection = SlackSection()
    plugin_config: dict[str, dict[str, Any]] = {}

    def plugin_section(self, name: str, model: type[BaseModel]) -> BaseModel:
        """A plugin's validated section (its defaults where the file has none)."""
        return model.model_validate(self.plugin_config.get(name, {}))


def load_config(path: Path, *, unset_env: list[str] | None = None) -> AgentConfig:
    """Read and validate a TOML config file; raise :class:`ConfigError` naming every bad key.

    ``unset_env``: collect ``env:`` variables that are not set into this list instead of failing.
    """
    source = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(source, [ConfigProblem("(file)", "not found; copy config.example.toml")]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(source, [ConfigProblem("(syntax)", f"not valid TOML: {error}")]) from None
    return parse_config(raw, source, unset_env=unset_env)


def parse_config(
    raw: Mapping[str, Any], source: str = "config", *, unset_env: list[str] | None = None
) -> AgentConfig:
    context = {UNSET_ENV_CONTEXT: unset_env} if unset_env is not None else None
    try:
        config = AgentConfig.model_validate(raw, context=context)
    except ValidationError as error:
        raise ConfigError(source, [_problem(item, raw) for item in error.errors()]) from None
    problems = cross_check(config)
    if problems:
        raise ConfigError(source, problems)
    return config


def cross_check(config: AgentConfig) -> list[ConfigProblem]:
    """Checks that span sections: quotas and costs name teams that exist."""
    problems = []
    for index, quota in enumerate(config.quotas):
        if quota.team is not None and quota.team not in config.teams:
            problems.append(ConfigProblem(f"quotas[{index}].team", _no_team(quota.team, config.teams)))
    for index, cost in enumerate(config.costs):
        if cost.team is not None and cost.team not in config.teams:
            problems.append(ConfigProblem(f"costs[{index}].team", _no_team(cost.team, config.teams)))
    return problems


def check_kpi_keys(config: AgentConfig, known: Iterable[str]) -> list[ConfigProblem]:
    """Every KPI key the config names must be provided by a loaded plugin."""
    known_keys = sorted(set(known))
    named = [(f"kpis.disabled[{i}]", key) for i, key in enumerate(config.kpis.disabled)]
    named += [(f"plugins.kpi_owner.{key}", key) for key in config.plugins.kpi_owner]
    named += [(f"quotas[{i}].kpi", quota.kpi) for i, quota in enumerate(config.quotas)]
    return [
        ConfigProblem(where, f"no plugin provides KPI {key!r}{_suggest(key, known_keys)}")
        for where, key in named
        if key not in known_keys
    ]


def check_plugin_sections(config: AgentConfig, sections: Mapping[str, ConfigSection]) -> list[ConfigProblem]:
    """Validate ``[plugin_config.*]`` against the sections plugins declared."""
    problems = []
    for name, raw in config.plugin_config.items():
        if name not in sections:
            hint = _suggest(name, sorted(sections))
            problems.append(ConfigProblem(f"plugin_config.{name}", f"no plugin declares this section{hint}"))
            continue
        try:
            sections[name].model.model_validate(raw)
        except ValidationError as error:
            prefix = ("plugin_config", name)
            problems += [_problem({**item, "loc": prefix + tuple(item["loc"])}, {}) for item in error.errors()]
    return problems


def _problem(item: Mapping[str, Any], raw: Mapping[str, Any]) -> ConfigProblem:
    full_location = list(item["loc"])
    location = [part for part in full_location if not _is_union_tag(part)]
    key = _dotted(location)
    if item["type"] == "extra_forbidden":
        siblings = _known_fields(full_location[:-1])
        return ConfigProblem(key, f"unknown key{_suggest(str(location[-1]), siblings)}")
    if item["type"] == "missing":
        return ConfigProblem(key, "required key is missing")
    if item["type"] == "union_tag_invalid":
        return ConfigProblem(key + ".kind", "unknown connector kind; use 'salesforce' or 'hubspot'")
    message = str(item["msg"]).removeprefix("Value error, ")
    return ConfigProblem(key, message)


_UNION_TAGS: dict[str, type[BaseModel]] = {"salesforce": SalesforceConnection, "hubspot": HubSpotConnection}


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (part in _UNION_TAGS or part.startswith("function-"))


def _dotted(location: list[Any]) -> str:
    key = ""
    for part in location:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key or "(top level)"


def _known_fields(parent: list[Any]) -> list[str]:
    """The field names valid at ``parent`` (a pydantic error location), for "did you mean" hints."""
    model: Any = AgentConfig
    next_is_dict_key = False
    for part in parent:
        if next_is_dict_key or isinstance(part, int):
            next_is_dict_key = False
            continue
        if _is_union_tag(part):
            model = _UNION_TAGS.get(part, model)
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        next_is_dict_key = typing.get_origin(field.annotation) is dict
        model = _inner_model(field.annotation)
    return sorted(getattr(model, "model_fields", {}))


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _inner_model(argument)
        if found is not None:
            return found
    return None


def _suggest(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _no_team(team: str, teams: Mapping[str, TeamConfig]) -> str:
    return f"no team {team!r} in [teams]{_suggest(team, sorted(teams))}"
