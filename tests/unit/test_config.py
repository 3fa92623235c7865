"""Settings: TOML file, then AUTOSDLC_WS_* environment, then overrides; refusals with reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autosdlc_ws.config import ApiKeyEntry, Settings, describe_settings, load_settings
from autosdlc_ws.core.auth import hash_api_key
from autosdlc_ws.errors import ConfigError

DIGEST = hash_api_key("ask_example")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    settings = load_settings(env={})
    assert settings == Settings()
    assert settings.port == 8765 and settings.broker == "memory"
    assert settings.heartbeat_interval_s == 25.0 and settings.auth_timeout_s == 5.0
    assert settings.max_frame_bytes == 65536 and settings.max_decompressed_bytes == 1048576
    assert settings.gzip_threshold_bytes == 1024
    assert settings.jwt_leeway_s <= 5.0


def test_env_overrides() -> None:
    settings = load_settings(env={
        "AUTOSDLC_WS_PORT": "9000",
        "AUTOSDLC_WS_JWT_SECRET": "s3cret",
        "AUTOSDLC_WS_GITHUB_WEBHOOK_SECRET": "gh",
        "AUTOSDLC_WS_BROKER": "redis://localhost:6379/0",
        "AUTOSDLC_WS_HEARTBEAT_INTERVAL_S": "2.5",
        "AUTOSDLC_WS_JWT_ALGORITHMS": "RS256, ES256",
        "AUTOSDLC_WS_DASHBOARD": "no",
        "AUTOSDLC_WS_JWT_ISSUER": "",
        "OTHER_PORT": "1",
    })
    assert settings.port == 9000
    assert settings.jwt_secret == "s3cret"
    assert settings.github_webhook_secret == "gh"
    assert settings.broker == "redis://localhost:6379/0"
    assert settings.heartbeat_interval_s == 2.5
    assert settings.jwt_algorithms == ("RS256", "ES256")
    assert settings.dashboard is False
    assert settings.jwt_issuer is None


def test_env_api_keys_as_json() -> None:
    keys = [{"name": "ci", "sha256": DIGEST.upper(), "permissions": ["publish:*"]}]
    settings = load_settings(env={"AUTOSDLC_WS_API_KEYS": json.dumps(keys)})
    assert settings.api_keys == (ApiKeyEntry("ci", DIGEST, ("publish:*",)),)


@pytest.mark.parametrize(("text", "expected"), [
    ("1", True), ("true", True), ("TRUE", True), ("yes", True),
    ("0", False), ("false", False), ("No", False),
])
def test_booleans(text: str, expected: bool) -> None:
    assert load_settings(env={"AUTOSDLC_WS_JWT_REQUIRE_EXP": text}).jwt_require_exp is expected


@pytest.mark.parametrize("text", ["maybe", "", "2", "on!", "tru"])
def test_bad_booleans_refused(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={"AUTOSDLC_WS_DASHBOARD": text})
    assert "dashboard" in str(info.value)


@pytest.mark.parametrize(("key", "value"), [("PORT", "eighty"), ("JWT_LEEWAY_S", "5s"),
                                            ("API_KEYS", "{not json")])
def test_bad_numbers_and_json_refused(key: str, value: str) -> None:
    with pytest.raises(ConfigError):
        load_settings(env={f"AUTOSDLC_WS_{key}": value})


def test_toml_file_with_api_keys(tmp_path: Path) -> None:
    path = write(tmp_path, f"""
port = 9100
jwt_secret = "file-secret"
jwt_algorithms = ["HS256"]
dashboard = false
history_max_age_s = 60

[[api_keys]]
name = "dashboard"
sha256 = "{DIGEST}"
permissions = ["read:*"]

[[api_keys]]
name = "agents"
sha256 = "{DIGEST[::-1]}"
permissions = ["publish:agent:*", "read:agent:*"]
""")
    settings = load_settings(path, env={})
    assert settings.port == 9100
    assert settings.jwt_secret == "file-secret"
    assert settings.jwt_algorithms == ("HS256",)
    assert settings.dashboard is False
    assert settings.history_max_age_s == 60.0
    assert settings.api_keys == (
        ApiKeyEntry("dashboard", DIGEST, ("read:*",)),
        ApiKeyEntry("agents", DIGEST[::-1], ("publish:agent:*", "read:agent:*")),
    )


def test_file_then_env_then_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, 'port = 1111\nhost = "0.0.0.0"\nlog_level = "DEBUG"\n')
    settings = load_settings(path, env={"AUTOSDLC_WS_PORT": "2222", "AUTOSDLC_WS_LOG_LEVEL": "WARNING"},
                             overrides={"port": 3333, "host": None})
    assert settings.port == 3333  # override beats env beats file
    assert settings.log_level == "WARNING"  # env beats file
    assert settings.host == "0.0.0.0"  # a None override leaves the value alone


def test_config_path_from_env(tmp_path: Path) -> None:
    path = write(tmp_path, "port = 4444\n")
    assert load_settings(env={"AUTOSDLC_WS_CONFIG": str(path)}).port == 4444


def test_unknown_keys_refused(tmp_path: Path) -> None:
    path = write(tmp_path, 'prot = 1\njwt_secert = "x"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert "jwt_secert" in str(info.value) and "prot" in str(info.value)


def test_unknown_table_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[jwt]\nsecret = "x"\n')
    with pytest.raises(ConfigError, match="jwt"):
        load_settings(path, env={})


def test_unknown_key_inside_an_api_key_refused(tmp_path: Path) -> None:
    # a typo would otherwise give a key with no permissions at all
    path = write(tmp_path, f'[[api_keys]]\nname = "k"\nsha256 = "{DIGEST}"\npermission = ["read:*"]\n')
    with pytest.raises(ConfigError, match="permission"):
        load_settings(path, env={})


@pytest.mark.parametrize("entry", [
    'name = "k"\npermissions = ["read:*"]',  # no digest
    'name = "k"\nsha256 = "abc"\npermissions = ["read:*"]',  # not a digest
    f'name = "k"\nsha256 = "{DIGEST}"\npermissions = ["read:everything"]',
    f'sha256 = "{DIGEST}"\npermissions = ["read:*"]',  # no name
])
def test_bad_api_keys_refused(tmp_path: Path, entry: str) -> None:
    with pytest.raises(ConfigError):
        load_settings(write(tmp_path, f"[[api_keys]]\n{entry}\n"), env={})


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", env={})
    with pytest.raises(ConfigError):
        load_settings(write(tmp_path, "port = = 1"), env={})


def test_workers_with_memory_broker_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={"AUTOSDLC_WS_WORKERS": "4"})
    assert "redis" in str(info.value).lower()
    ok = load_settings(env={"AUTOSDLC_WS_WORKERS": "4", "AUTOSDLC_WS_BROKER": "redis://r:6379/0"})
    assert ok.workers == 4
    with pytest.raises(ConfigError):
        Settings(workers=0)


@pytest.mark.parametrize("broker", ["kafka://x", "redis", "memory://", ""])
def test_bad_broker_refused(broker: str) -> None:
    with pytest.raises(ConfigError):
        Settings(broker=broker)


@pytest.mark.parametrize("algs", ["HS256,none", "none", "RS256,None", "NONE"])
def test_none_algorithm_refused(algs: str) -> None:
    with pytest.raises(ConfigError, match="none"):
        load_settings(env={"AUTOSDLC_WS_JWT_ALGORITHMS": algs})


def test_other_invariants() -> None:
    with pytest.raises(ConfigError):
        Settings(tls_cert="cert.pem")
    with pytest.raises(ConfigError):
        Settings(log_format="xml")
    with pytest.raises(ConfigError):
        Settings(max_frame_bytes=0)
    assert Settings(tls_cert="c.pem", tls_key="k.pem").tls_key == "k.pem"


def test_replace_validates_again() -> None:
    with pytest.raises(ConfigError):
        Settings().replace(workers=2)
    assert Settings().replace(port=1).port == 1


def test_every_setting_has_a_comment_row() -> None:
    rows = describe_settings()
    names = [r[0] for r in rows]
    assert "jwt_secret" in names and "api_keys" in names
    assert dict((r[0], r[1]) for r in rows)["port"] == "8765"


def test_an_unknown_broker_scheme_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        Settings(broker="nats://localhost:4222")
    assert "memory, redis://, redis-cluster://, rediss://, rediss-cluster://" in str(info.value)


def test_message_log_from_a_toml_table_or_json(tmp_path: Path) -> None:
    path = write(tmp_path, '[message_log]\nenabled = true\ntypes = ["agent_*"]\nsampleRate = 0.5\n')
    config = load_settings(path, env={}).message_log
    assert config is not None and config.enabled and config.types == ["agent_*"] and config.sample_rate == 0.5
    from_env = load_settings(env={"AUTOSDLC_WS_MESSAGE_LOG": '{"enabled": true, "subjects": ["alice"]}'})
    assert from_env.message_log is not None and from_env.message_log.subjects == ["alice"]
    assert load_settings(env={}).message_log is None


@pytest.mark.parametrize("value", ['{"sampleRate": 2}', '{"directions": ["sideways"]}', '{"colour": 1}',
                                   "[1, 2]", "{not json"])
def test_invalid_message_log_stops_the_start_with_the_reason(value: str) -> None:
    with pytest.raises(ConfigError, match="message_log"):
        load_settings(env={"AUTOSDLC_WS_MESSAGE_LOG": value})


@pytest.mark.parametrize(("changes", "message"), [
    ({"write_delay_ms": -1}, "write_delay_ms"), ({"write_delay_ms": 1001}, "write_delay_ms"),
    ({"max_batch_bytes": 0}, "max_batch_bytes"), ({"event_loop": "trio"}, "event_loop"),
])
def test_batching_and_loop_settings_are_checked(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings(**changes)  # type: ignore[arg-type]
    assert Settings().write_delay_ms == 0 and Settings().max_batch_bytes == 65536


def test_heartbeat_and_process_capacity_are_checked() -> None:
    assert Settings(heartbeat_interval_s=0).heartbeat_interval_s == 0  # 0: no pings
    for bad in ({"heartbeat_interval_s": -1}, {"max_connections_per_process": -5},
                {"redis_partitions": 0}, {"redis_partition_readers": "some"}):
        with pytest.raises(ConfigError):
            Settings(**bad)  # type: ignore[arg-type]
