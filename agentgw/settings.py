"""One settings object (SPEC §2).

Sources, later wins: built-in defaults → ``config/application.yml`` →
``./application.yml`` → ``/opt/application.yml`` → environment variables.
Keys are written in kebab-case as in the YAML files (``agent.catalog.external-dir``);
an invalid value stops startup with a :class:`SettingsError` naming the dotted key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentgw.errors import SettingsError


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class _Section(BaseModel):
    model_config = ConfigDict(alias_generator=_kebab, populate_by_name=True, extra="forbid", frozen=True)


def _split_list(value: Any) -> Any:
    """Comma lists arrive as ``"a, b"`` from the environment and as lists from YAML."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class ServerSettings(_Section):
    port: int = Field(8080, ge=0, le=65535)
    host: str = "0.0.0.0"


class DirSettings(_Section):
    external_dir: str
    refresh_interval_ms: int = Field(30000, ge=100)


# One class per folder so a partial section (only `refresh-interval-ms`, say) keeps its
# own default `external-dir` instead of failing as "field required".
class CatalogDirSettings(DirSettings):
    external_dir: str = "agents"
    refresh_interval_ms: int = Field(10000, ge=100)


class ModelDirSettings(DirSettings):
    external_dir: str = "models"


class ViewportDirSettings(DirSettings):
    external_dir: str = "viewports"


class DataSettings(_Section):
    external_dir: str = "data"


class CapabilitySettings(_Section):
    tools_external_dir: str = "tools"
    refresh_interval_ms: int = Field(30000, ge=100)


class FrontendToolSettings(_Section):
    submit_timeout_ms: int = Field(300000, ge=1)


class AgentFileCreateSettings(_Section):
    default_system_prompt: str = "You are a helpful general-purpose assistant. Be clear and actionable."


class BashSettings(_Section):
    working_directory: str = Field(default_factory=os.getcwd)
    allowed_paths: list[str] = Field(default_factory=list)
    allowed_commands: list[str] = Field(default_factory=list)
    path_checked_commands: list[str] = Field(default_factory=list)
    shell_features_enabled: bool = False
    shell_executable: str = "bash"
    shell_timeout_ms: int = Field(10000, ge=1)
    max_command_chars: int = Field(16000, ge=1)

    _lists = field_validator("allowed_paths", "allowed_commands", "path_checked_commands", mode="before")(
        _split_list
    )


class ToolsSettings(_Section):
    frontend: FrontendToolSettings = FrontendToolSettings()
    agent_file_create: AgentFileCreateSettings = AgentFileCreateSettings()
    bash: BashSettings = Field(default_factory=BashSettings)


class SkillSettings(_Section):
    external_dir: str = "skills"
    refresh_interval_ms: int = Field(30000, ge=100)
    max_prompt_chars: int = Field(8000, ge=1)


class PromptsSettings(_Section):
    external_dir: str = "prompts"


class AuthSettings(_Section):
    enabled: bool = True
    jwks_uri: str = ""
    issuer: str = ""
    jwks_cache_seconds: int | None = None
    local_public_key: str = ""

    @field_validator("jwks_cache_seconds", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value in ("", None) else value


class ChatImageTokenSettings(_Section):
    secret: str = Field("", repr=False)
    previous_secrets: list[str] = Field(default_factory=list, repr=False)
    ttl_seconds: int = Field(86400, ge=1)

    _lists = field_validator("previous_secrets", mode="before")(_split_list)


class InteractionLogSettings(_Section):
    enabled: bool = True
    mask_sensitive: bool = True


class LlmSettings(_Section):
    interaction_log: InteractionLogSettings = InteractionLogSettings()


class CorsSettings(_Section):
    enabled: bool = False
    path_pattern: str = "/api/**"
    allowed_origin_patterns: list[str] = Field(default_factory=lambda: ["http://localhost:8081"])
    allowed_methods: list[str] = Field(
        default_factory=lambda: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    )
    allowed_headers: list[str] = Field(default_factory=lambda: ["*"])
    exposed_headers: list[str] = Field(default_factory=lambda: ["Content-Type"])
    allow_credentials: bool = False
    max_age_seconds: int = 3600

    _lists = field_validator(
        "allowed_origin_patterns", "allowed_methods", "allowed_headers", "exposed_headers", mode="before"
    )(_split_list)


class ProviderSettings(_Section):
    """Connection settings of one provider; the wire protocol comes from the model file."""

    base_url: str = ""
    api_key: str = Field("", repr=False)
    model: str = ""
    new_api_path: str = "/v1/chat/completions"


class ExaSettings(_Section):
    api_key: str = Field("", repr=False)
    base_url: str = ""


class WebSearchSettings(_Section):
    enabled: bool = True
    exa: ExaSettings = ExaSettings()


class DemoProviderSettings(_Section):
    """The built-in scripted provider (``agentgw.providers.scripted``) served in-process.

    When enabled, providers whose ``base-url`` is ``builtin:demo`` are pointed at it.
    """

    enabled: bool = True


class AgentSettings(_Section):
    catalog: CatalogDirSettings = CatalogDirSettings()
    model: ModelDirSettings = ModelDirSettings()
    viewport: ViewportDirSettings = ViewportDirSettings()
    data: DataSettings = DataSettings()
    capability: CapabilitySettings = CapabilitySettings()
    tools: ToolsSettings = Field(default_factory=ToolsSettings)
    skill: SkillSettings = SkillSettings()
    prompts: PromptsSettings = PromptsSettings()
    auth: AuthSettings = AuthSettings()
    chat_image_token: ChatImageTokenSettings = ChatImageTokenSettings()
    llm: LlmSettings = LlmSettings()
    cors: CorsSettings = Field(default_factory=CorsSettings)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    web_search: WebSearchSettings = WebSearchSettings()
    demo_provider: DemoProviderSettings = DemoProviderSettings()


class ChatMemorySettings(_Section):
    dir: str = "./chats"
    k: int = Field(20, ge=1)
    charset: str = "UTF-8"
    action_tools: list[str] = Field(default_factory=list)
    trim_file: bool = False
    # Small appends and index updates are done on the event loop (~15-40 µs on a local disk)
    # instead of a thread hop (~120 µs of CPU each). Set false when chats live on a slow
    # network filesystem, where every write would stall the loop.
    inline_writes: bool = True

    _lists = field_validator("action_tools", mode="before")(_split_list)


class MemorySettings(_Section):
    chat: ChatMemorySettings = ChatMemorySettings()


class Settings(BaseModel):
    """The whole configuration. Unknown top-level sections (``spring``, ``logging``) are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    server: ServerSettings = ServerSettings()
    agent: AgentSettings = Field(default_factory=AgentSettings)
    memory: MemorySettings = MemorySettings()
    log_level: str = Field("INFO", alias="log-level")


# Environment variable → dotted key (SPEC §2 table).
ENV_KEYS: dict[str, str] = {
    "SERVER_PORT": "server.port",
    "AGENT_EXTERNAL_DIR": "agent.catalog.external-dir",
    "AGENT_REFRESH_INTERVAL_MS": "agent.catalog.refresh-interval-ms",
    "AGENT_MODEL_EXTERNAL_DIR": "agent.model.external-dir",
    "AGENT_MODEL_REFRESH_INTERVAL_MS": "agent.model.refresh-interval-ms",
    "AGENT_VIEWPORT_EXTERNAL_DIR": "agent.viewport.external-dir",
    "AGENT_VIEWPORT_REFRESH_INTERVAL_MS": "agent.viewport.refresh-interval-ms",
    "AGENT_DATA_EXTERNAL_DIR": "agent.data.external-dir",
    "AGENT_TOOLS_EXTERNAL_DIR": "agent.capability.tools-external-dir",
    "AGENT_CAPABILITY_REFRESH_INTERVAL_MS": "agent.capability.refresh-interval-ms",
    "AGENT_TOOLS_FRONTEND_SUBMIT_TIMEOUT_MS": "agent.tools.frontend.submit-timeout-ms",
    "AGENT_TOOLS_AGENT_FILE_CREATE_DEFAULT_SYSTEM_PROMPT": "agent.tools.agent-file-create.default-system-prompt",
    "AGENT_BASH_WORKING_DIRECTORY": "agent.tools.bash.working-directory",
    "AGENT_BASH_ALLOWED_PATHS": "agent.tools.bash.allowed-paths",
    "AGENT_BASH_ALLOWED_COMMANDS": "agent.tools.bash.allowed-commands",
    "AGENT_BASH_PATH_CHECKED_COMMANDS": "agent.tools.bash.path-checked-commands",
    "AGENT_BASH_SHELL_FEATURES_ENABLED": "agent.tools.bash.shell-features-enabled",
    "AGENT_BASH_SHELL_EXECUTABLE": "agent.tools.bash.shell-executable",
    "AGENT_BASH_SHELL_TIMEOUT_MS": "agent.tools.bash.shell-timeout-ms",
    "AGENT_BASH_MAX_COMMAND_CHARS": "agent.tools.bash.max-command-chars",
    "AGENT_SKILL_EXTERNAL_DIR": "agent.skill.external-dir",
    "AGENT_SKILL_REFRESH_INTERVAL_MS": "agent.skill.refresh-interval-ms",
    "AGENT_SKILL_MAX_PROMPT_CHARS": "agent.skill.max-prompt-chars",
    "AGENT_PROMPTS_EXTERNAL_DIR": "agent.prompts.external-dir",
    "AGENT_AUTH_ENABLED": "agent.auth.enabled",
    "AGENT_AUTH_JWKS_URI": "agent.auth.jwks-uri",
    "AGENT_AUTH_ISSUER": "agent.auth.issuer",
    "AGENT_AUTH_JWKS_CACHE_SECONDS": "agent.auth.jwks-cache-seconds",
    "CHAT_IMAGE_TOKEN_SECRET": "agent.chat-image-token.secret",
    "CHAT_IMAGE_TOKEN_PREVIOUS_SECRETS": "agent.chat-image-token.previous-secrets",
    "CHAT_IMAGE_TOKEN_TTL_SECONDS": "agent.chat-image-token.ttl-seconds",
    "MEMORY_CHAT_DIR": "memory.chat.dir",
    "MEMORY_CHAT_K": "memory.chat.k",
    "MEMORY_CHAT_CHARSET": "memory.chat.charset",
    "MEMORY_CHAT_ACTION_TOOLS": "memory.chat.action-tools",
    "MEMORY_CHAT_INLINE_WRITES": "memory.chat.inline-writes",
    "AGENT_LLM_INTERACTION_LOG_ENABLED": "agent.llm.interaction-log.enabled",
    "AGENT_LLM_INTERACTION_LOG_MASK_SENSITIVE": "agent.llm.interaction-log.mask-sensitive",
    "AGENT_WEB_SEARCH_ENABLED": "agent.web-search.enabled",
    "EXA_API_KEY": "agent.web-search.exa.api-key",
    "AGENT_DEMO_PROVIDER_ENABLED": "agent.demo-provider.enabled",
    "AGENTGW_LOG_LEVEL": "log-level",
}

_PROVIDER_ENV_FIELDS = {
    "_BASE_URL": "base-url",
    "_API_KEY": "api-key",
    "_MODEL": "model",
    "_NEW_API_PATH": "new-api-path",
}

DEFAULT_FILES = ("config/application.yml", "application.yml", "/opt/application.yml")


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = target
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _expand_dotted_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    """Accept both nested YAML and flat ``a.b.c: value`` keys, as Spring does."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if value is None:
            continue  # a blank YAML entry (`agent:`, `api-key:`) means "not set": keep the default
        value = _expand_dotted_keys(value) if isinstance(value, Mapping) else value
        if isinstance(key, str) and "." in key:
            nested: dict[str, Any] = {}
            _set_dotted(nested, key, value)
            out = _deep_merge(out, nested)
        elif isinstance(value, dict) and isinstance(out.get(str(key)), dict):
            out[str(key)] = _deep_merge(out[str(key)], value)
        else:
            out[str(key)] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SettingsError(str(path), f"cannot read settings file: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise SettingsError(str(path), "settings file must hold a mapping at the top level")
    return _expand_dotted_keys(data)


def _mapping_at(data: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    """The mapping at ``path``, or an empty one when a level is missing or not a mapping."""
    node: Any = data
    for part in path:
        node = node.get(part) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def _provider_env(environ: Mapping[str, str], merged: dict[str, Any]) -> dict[str, Any]:
    known = {k.lower().replace("-", "_"): k for k in _mapping_at(merged, "agent", "providers")}
    out: dict[str, Any] = {}
    prefix = "AGENT_PROVIDERS_"
    for name, value in environ.items():
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix) :]
        for suffix, field in _PROVIDER_ENV_FIELDS.items():
            if rest.endswith(suffix) and len(rest) > len(suffix):
                raw_key = rest[: -len(suffix)].lower()
                key = known.get(raw_key, raw_key)
                _set_dotted(out, f"agent.providers.{key}.{field}", value)
                break
    return out


def load_settings(
    files: tuple[str, ...] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load settings from the layered sources; ``overrides`` (dotted keys) win over everything."""
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    for name in DEFAULT_FILES if files is None else files:
        path = Path(name)
        if path.is_file():
            merged = _deep_merge(merged, _read_yaml(path))
    env_layer: dict[str, Any] = {}
    for env_name, dotted in ENV_KEYS.items():
        if env_name in environ:
            _set_dotted(env_layer, dotted, environ[env_name])
    # EXA_API_KEY is a fallback: a key set in a settings file wins over it.
    exa = _mapping_at(merged, "agent", "web-search", "exa")
    if exa.get("api-key") and "EXA_API_KEY" in environ:
        env_layer["agent"]["web-search"]["exa"].pop("api-key")
    merged = _deep_merge(merged, env_layer)
    merged = _deep_merge(merged, _provider_env(environ, merged))
    for dotted, value in (overrides or {}).items():
        _set_dotted(merged, dotted, value)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise SettingsError(key, first["msg"]) from exc


def resolve_dir(path: str) -> Path:
    """Settings folders are relative to the process working directory."""
    return Path(path).expanduser().resolve()
