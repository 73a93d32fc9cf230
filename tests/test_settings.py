"""Settings: defaults → config/application.yml → ./application.yml → /opt/application.yml → env (SPEC §2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentgw.errors import SettingsError
from agentgw.settings import load_settings

REPO = Path(__file__).resolve().parent.parent


def test_defaults_match_the_spec_table() -> None:
    s = load_settings(files=(), environ={})
    agent = s.agent
    assert s.server.port == 8080
    assert (agent.catalog.external_dir, agent.catalog.refresh_interval_ms) == ("agents", 10000)
    assert (agent.model.external_dir, agent.model.refresh_interval_ms) == ("models", 30000)
    assert (agent.viewport.external_dir, agent.viewport.refresh_interval_ms) == ("viewports", 30000)
    assert (agent.capability.tools_external_dir, agent.capability.refresh_interval_ms) == ("tools", 30000)
    assert (agent.skill.external_dir, agent.skill.max_prompt_chars) == ("skills", 8000)
    assert agent.prompts.external_dir == "prompts"
    assert agent.data.external_dir == "data"
    assert agent.tools.frontend.submit_timeout_ms == 300000
    bash = agent.tools.bash
    assert (bash.allowed_commands, bash.allowed_paths, bash.shell_features_enabled) == ([], [], False)
    assert (bash.shell_executable, bash.shell_timeout_ms, bash.max_command_chars) == ("bash", 10000, 16000)
    assert agent.auth.enabled is True
    assert agent.chat_image_token.ttl_seconds == 86400
    assert (s.memory.chat.dir, s.memory.chat.k, s.memory.chat.charset) == ("./chats", 20, "UTF-8")
    assert agent.llm.interaction_log.enabled and agent.llm.interaction_log.mask_sensitive
    cors = agent.cors
    assert (cors.enabled, cors.path_pattern, cors.allowed_origin_patterns, cors.max_age_seconds) == (
        False,
        "/api/**",
        ["http://localhost:8081"],
        3600,
    )
    assert agent.providers == {}


def test_later_sources_win(tmp_path: Path) -> None:
    shipped = tmp_path / "shipped.yml"
    shipped.write_text(
        "server:\n  port: 9000\nmemory:\n  chat:\n    k: 5\nagent:\n  skill:\n    max-prompt-chars: 100\n"
    )
    local = tmp_path / "local.yml"
    local.write_text("server:\n  port: 9100\nagent.skill.external-dir: my-skills\n")
    s = load_settings(
        files=(str(shipped), str(local), str(tmp_path / "absent.yml")), environ={"SERVER_PORT": "9200"}
    )
    assert s.server.port == 9200  # env beats both files
    assert s.memory.chat.k == 5  # only in the first file
    assert s.agent.skill.max_prompt_chars == 100
    assert s.agent.skill.external_dir == "my-skills"  # flat dotted keys work too


def test_default_file_locations_are_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "application.yml").write_text(
        "server:\n  port: 7000\nmemory:\n  chat:\n    k: 3\n"
    )
    (tmp_path / "application.yml").write_text("server:\n  port: 7001\n")
    monkeypatch.chdir(tmp_path)
    s = load_settings(environ={})
    assert (s.server.port, s.memory.chat.k) == (7001, 3)


def test_environment_variables_map_to_their_keys() -> None:
    env = {
        "AGENT_EXTERNAL_DIR": "/srv/agents",
        "AGENT_REFRESH_INTERVAL_MS": "2500",
        "AGENT_BASH_ALLOWED_COMMANDS": "ls, cat ,grep",
        "AGENT_BASH_SHELL_FEATURES_ENABLED": "true",
        "MEMORY_CHAT_K": "7",
        "AGENT_AUTH_ENABLED": "false",
        "AGENT_AUTH_JWKS_CACHE_SECONDS": "",
        "CHAT_IMAGE_TOKEN_PREVIOUS_SECRETS": "old1,old2",
    }
    s = load_settings(files=(), environ=env)
    assert s.agent.catalog.external_dir == "/srv/agents"
    assert s.agent.catalog.refresh_interval_ms == 2500
    assert s.agent.tools.bash.allowed_commands == ["ls", "cat", "grep"]
    assert s.agent.tools.bash.shell_features_enabled is True
    assert s.memory.chat.k == 7
    assert s.agent.auth.enabled is False
    assert s.agent.auth.jwks_cache_seconds is None
    assert s.agent.chat_image_token.previous_secrets == ["old1", "old2"]


@pytest.mark.parametrize(
    ("env", "section", "folder"),
    [
        ({"AGENT_REFRESH_INTERVAL_MS": "5000"}, "catalog", "agents"),
        ({"AGENT_MODEL_REFRESH_INTERVAL_MS": "5000"}, "model", "models"),
        ({"AGENT_VIEWPORT_REFRESH_INTERVAL_MS": "5000"}, "viewport", "viewports"),
    ],
)
def test_a_partial_folder_section_keeps_its_default_folder(
    env: dict[str, str], section: str, folder: str
) -> None:
    dirs = getattr(load_settings(files=(), environ=env).agent, section)
    assert (dirs.external_dir, dirs.refresh_interval_ms) == (folder, 5000)


def test_provider_keys_come_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "app.yml"
    config.write_text(
        "agent:\n  providers:\n    bailian:\n      base-url: https://dashscope.example/v1\n"
        "    new-api:\n      base-url: https://gw.example\n"
    )
    env = {
        "AGENT_PROVIDERS_BAILIAN_API_KEY": "sk-bailian",
        "AGENT_PROVIDERS_NEW_API_API_KEY": "sk-new",
        "AGENT_PROVIDERS_NEW_API_NEW_API_PATH": "/api/v1/chat",
        "AGENT_PROVIDERS_EXTRA_BASE_URL": "https://extra.example/v1",
    }
    providers = load_settings(files=(str(config),), environ=env).agent.providers
    assert providers["bailian"].base_url == "https://dashscope.example/v1"
    assert providers["bailian"].api_key == "sk-bailian"
    assert (providers["new-api"].api_key, providers["new-api"].new_api_path) == ("sk-new", "/api/v1/chat")
    assert providers["extra"].base_url == "https://extra.example/v1"
    assert "sk-bailian" not in repr(providers)


def test_exa_key_from_a_file_wins_over_the_environment_fallback(tmp_path: Path) -> None:
    config = tmp_path / "app.yml"
    config.write_text("agent:\n  web-search:\n    exa:\n      api-key: from-file\n")
    assert (
        load_settings(files=(str(config),), environ={"EXA_API_KEY": "from-env"}).agent.web_search.exa.api_key
        == "from-file"
    )
    assert (
        load_settings(files=(), environ={"EXA_API_KEY": "from-env"}).agent.web_search.exa.api_key
        == "from-env"
    )


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"SERVER_PORT": "eighty"}, "server.port"),
        ({"SERVER_PORT": "70000"}, "server.port"),
        ({"AGENT_SKILL_MAX_PROMPT_CHARS": "0"}, "agent.skill.max-prompt-chars"),
        ({"AGENT_AUTH_ENABLED": "perhaps"}, "agent.auth.enabled"),
        ({"MEMORY_CHAT_K": "-1"}, "memory.chat.k"),
    ],
)
def test_invalid_settings_name_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(files=(), environ=env)
    assert info.value.key == key
    assert key in str(info.value)


def test_unknown_keys_and_bad_files_are_named(tmp_path: Path) -> None:
    typo = tmp_path / "typo.yml"
    typo.write_text("agent:\n  catalog:\n    external-dirr: x\n")
    with pytest.raises(SettingsError) as info:
        load_settings(files=(str(typo),), environ={})
    assert info.value.key == "agent.catalog.external-dirr"
    broken = tmp_path / "broken.yml"
    broken.write_text("agent: [\n")
    with pytest.raises(SettingsError) as info:
        load_settings(files=(str(broken),), environ={})
    assert info.value.key == str(broken)
    listing = tmp_path / "list.yml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(SettingsError, match="mapping"):
        load_settings(files=(str(listing),), environ={})


def test_blank_sections_mean_defaults(tmp_path: Path) -> None:
    config = tmp_path / "blank.yml"
    config.write_text("agent:\nmemory:\n  chat:\n    dir:\n")
    s = load_settings(files=(str(config),), environ={"EXA_API_KEY": "e", "AGENT_PROVIDERS_X_API_KEY": "k"})
    assert s.memory.chat.dir == "./chats"
    assert s.agent.web_search.exa.api_key == "e"
    assert s.agent.providers["x"].api_key == "k"


def test_secrets_stay_out_of_reprs() -> None:
    env = {
        "CHAT_IMAGE_TOKEN_SECRET": "hmac-secret",
        "EXA_API_KEY": "exa-secret",
        "AGENT_PROVIDERS_P_API_KEY": "sk-p",
    }
    s = load_settings(files=(), environ=env)
    text = repr(s)
    assert "hmac-secret" not in text and "exa-secret" not in text and "sk-p" not in text
    assert s.agent.chat_image_token.secret == "hmac-secret"


def test_the_shipped_config_loads_with_keys_from_the_environment() -> None:
    s = load_settings(
        files=(str(REPO / "config" / "application.yml"),),
        environ={"AGENT_PROVIDERS_SILICONFLOW_API_KEY": "sk-sf"},
    )
    providers = s.agent.providers
    assert set(providers) == {"bailian", "siliconflow", "newapi", "openai", "anthropic", "demo"}
    assert providers["bailian"].base_url == "https://dashscope.aliyuncs.com/compatible-mode/v1"
    assert providers["siliconflow"].base_url == "https://api.siliconflow.cn/v1"
    assert providers["siliconflow"].api_key == "sk-sf"
    assert providers["newapi"].new_api_path == "/v1/chat/completions"
    assert providers["demo"].base_url == "builtin:demo"
    assert all(p.api_key == "" for k, p in providers.items() if k != "siliconflow")
    bash = s.agent.tools.bash
    assert bash.allowed_commands == ["ls", "cat", "pwd", "echo", "wc", "head", "tail", "grep", "date"]
    assert bash.allowed_paths == ["."]
