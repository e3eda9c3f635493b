"""The daemon's TOML: an unknown key or a value of the wrong type is an error naming the key."""

from __future__ import annotations

import pytest

from daemon.config import from_dict, load_config


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"daemon": {"max_sesions": 3}}, "daemon.max_sesions: unknown key"),
        ({"deamon": {}}, "deamon: unknown key"),
        ({"daemon": {"stop_agents_on_shutdown": "false"}}, "daemon.stop_agents_on_shutdown"),
        ({"daemon": {"max_sessions": "16"}}, "daemon.max_sessions"),
        ({"listen": {"unix_socket_mode": "0660"}}, "listen.unix_socket_mode"),
        ({"listen": {"tokn_file": "/x"}}, "listen.tokn_file: unknown key"),
        ({"providers": {"claude_code": {"args": "--verbose"}}}, "providers.claude_code.args"),
        ({"providers": {"codex": {"binaryy": "codex"}}}, "providers.codex.binaryy: unknown key"),
    ],
)
def test_a_typo_or_a_wrong_type_is_an_error_naming_the_key(data, named):
    with pytest.raises(ValueError) as info:
        from_dict(data)
    assert named in str(info.value)


def test_every_documented_key_is_accepted():
    config = from_dict(
        {
            "daemon": {
                "state_dir": "/tmp/s",
                "repos_root": "/tmp/r",
                "worktrees_root": "/tmp/w",
                "max_sessions": 4,
                "stop_grace_seconds": 2,
                "log_format": "json",
                "log_level": "debug",
                "stop_agents_on_shutdown": True,
            },
            "listen": {"unix_socket": "/tmp/d.sock", "unix_socket_mode": 0o600, "metrics": "127.0.0.1:9464"},
            "providers": {
                "claude_code": {"binary": "claude", "args": ["--verbose"], "env": {"A": "1"}, "default_model": "haiku"},
                "codex": {"binary": "codex"},
            },
            "pool": {"size": 0},
        }
    )
    assert config.max_sessions == 4 and config.stop_grace_seconds == 2.0 and config.stop_agents_on_shutdown is True


def test_errors_of_a_config_file_name_the_file(tmp_path):
    path = tmp_path / "daemon.toml"
    path.write_text("[daemon]\nmax_sesions = 3\n")
    with pytest.raises(ValueError, match=f"^{path}: daemon.max_sesions: unknown key"):
        load_config(path)
    path.write_text("[daemon\n")
    with pytest.raises(ValueError, match=f"^{path}: "):
        load_config(path)


def test_dial_out_reads_the_credential_file_and_refuses_plaintext_off_loopback(tmp_path):
    credential = tmp_path / "credential"
    credential.write_text("secret-credential\n")
    config = from_dict({"dial_out": {"address": "cp.example.com:7443", "credential_file": str(credential)}})
    assert config.dial_out is not None
    assert (config.dial_out.address, config.dial_out.credential, config.dial_out.plaintext) == (
        "cp.example.com:7443",
        "secret-credential",
        False,
    )
    with pytest.raises(ValueError, match="dial_out.plaintext"):
        from_dict(
            {"dial_out": {"address": "cp.example.com:7443", "credential_file": str(credential), "plaintext": True}}
        )
    assert from_dict(
        {"dial_out": {"address": "127.0.0.1:7443", "credential_file": str(credential), "plaintext": True}}
    ).dial_out.plaintext  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="dial_out.credential_file"):
        from_dict({"dial_out": {"address": "cp.example.com:7443", "credential_file": str(tmp_path / "missing")}})
    with pytest.raises(ValueError, match="dial_out.address"):
        from_dict({"dial_out": {"address": "no-port", "credential_file": str(credential)}})
    with pytest.raises(ValueError, match="dial_out.credential_file"):
        from_dict({"dial_out": {"address": "cp.example.com:7443"}})
