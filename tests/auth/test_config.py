"""`chorus auth` flags and environment -> Settings: the signing key, the database, the address."""

from __future__ import annotations

import dataclasses

import pytest

from chorus.auth.config import Settings, settings_from_args
from chorus.cli import build_parser

KEY = "k" * 32


def settings_for(argv: list[str], env: dict[str, str]) -> Settings:
    """What `chorus auth ARGV` would run with, given ``env``."""
    return settings_from_args(build_parser(env).parse_args(["auth", *argv]), env)


@pytest.fixture
def home(tmp_path):
    return {"HOME": str(tmp_path)}


@pytest.fixture
def keyed(home):
    return {**home, "CHORUS_TOKEN_KEY": KEY}


def test_defaults_use_sqlite_in_the_users_data_dir(keyed, tmp_path):
    settings = settings_for([], keyed)
    expected_db = tmp_path / ".local" / "share" / "chorus" / "auth.db"
    assert settings == Settings(database_url=f"sqlite:///{expected_db}", token_key=KEY.encode())
    assert (settings.listen, settings.token_ttl_secs) == ("127.0.0.1:50051", 7 * 24 * 3600)
    assert (settings.max_workers, settings.grace_secs) == (16, 5)
    assert expected_db.parent.is_dir()


def test_data_dir_from_environment_or_flag(keyed, tmp_path):
    from_env = settings_for([], {**keyed, "CHORUS_DATA_DIR": str(tmp_path / "env")})
    assert from_env.database_url == f"sqlite:///{tmp_path / 'env' / 'auth.db'}"
    from_flag = settings_for(["--data-dir", str(tmp_path / "flag")], {**keyed, "CHORUS_DATA_DIR": "/ignored"})
    assert from_flag.database_url == f"sqlite:///{tmp_path / 'flag' / 'auth.db'}"


def test_a_data_dir_that_cannot_be_created_is_a_clear_error(keyed, tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ValueError, match=r"--data-dir \(\$CHORUS_DATA_DIR\): cannot create .*file/sub"):
        settings_for(["--data-dir", str(tmp_path / "file" / "sub")], keyed)


@pytest.mark.parametrize(
    ("env", "argv", "expected"),
    [
        ({"DATABASE_URL": "postgresql://shared/db"}, [], "postgresql://shared/db"),
        ({"DATABASE_URL": "postgresql://shared/db", "CHORUS_AUTH_DATABASE_URL": "postgresql://own/db"}, [],
         "postgresql://own/db"),
        ({"CHORUS_AUTH_DATABASE_URL": "postgresql://own/db", "DATABASE_URL": "postgresql://shared/db"},
         ["--database-url", "sqlite:///x.db"], "sqlite:///x.db"),
        ({"CHORUS_MEMBERSHIP_DATABASE_URL": "postgresql://not-ours/db"}, ["--data-dir", "{tmp}/d"],
         "sqlite:///{tmp}/d/auth.db"),
    ],
    ids=["DATABASE_URL", "CHORUS_AUTH_DATABASE_URL over DATABASE_URL", "flag over both", "else auth.db"],
)
def test_database_url_precedence(keyed, tmp_path, env, argv, expected):
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    assert settings_for(argv, {**keyed, **env}).database_url == expected.replace("{tmp}", str(tmp_path))


def test_help_never_shows_the_database_password_or_the_key(keyed, capsys):
    env = {**keyed, "DATABASE_URL": "postgresql://app:hunter2@db/chorus"}
    with pytest.raises(SystemExit):
        build_parser(env).parse_args(["auth", "--help"])
    shown = capsys.readouterr().out
    assert "--token-key-file" in shown
    assert "hunter2" not in shown and KEY not in shown


def test_settings_never_show_the_key():
    settings = Settings(database_url="sqlite:///x.db", token_key=KEY.encode())
    assert KEY not in repr(settings) and KEY not in str(settings)


def test_no_key_is_an_error_naming_where_to_put_one(home):
    with pytest.raises(ValueError) as caught:
        settings_for([], home)
    assert str(caught.value) == ("no token signing key: set CHORUS_TOKEN_KEY (at least 32 bytes) "
                                 "or CHORUS_TOKEN_KEY_FILE / --token-key-file")


def test_an_empty_key_variable_counts_as_no_key(home):
    with pytest.raises(ValueError, match="no token signing key: set CHORUS_TOKEN_KEY"):
        settings_for([], {**home, "CHORUS_TOKEN_KEY": ""})


def test_the_key_comes_from_the_environment(home):
    assert settings_for([], {**home, "CHORUS_TOKEN_KEY": KEY}).token_key == KEY.encode()


def test_the_key_length_is_counted_in_bytes(home):
    assert settings_for([], {**home, "CHORUS_TOKEN_KEY": "é" * 16}).token_key == ("é" * 16).encode()


@pytest.mark.parametrize("key", ["short", "k" * 31])
def test_a_short_key_in_the_environment_is_refused(home, key):
    with pytest.raises(ValueError) as caught:
        settings_for([], {**home, "CHORUS_TOKEN_KEY": key})
    assert str(caught.value) == (f"the token signing key in CHORUS_TOKEN_KEY is {len(key)} bytes; "
                                 "it must be at least 32")


def test_the_key_comes_from_a_file_given_by_flag_or_environment(home, tmp_path):
    key_file = tmp_path / "token.key"
    key_file.write_text(f"{KEY}\n")  # a trailing newline, as editors and `echo` leave
    assert settings_for(["--token-key-file", str(key_file)], home).token_key == KEY.encode()
    assert settings_for([], {**home, "CHORUS_TOKEN_KEY_FILE": str(key_file)}).token_key == KEY.encode()


def test_a_short_key_in_a_file_is_refused_naming_the_file(home, tmp_path):
    key_file = tmp_path / "token.key"
    key_file.write_text("k" * 31 + "\n")
    with pytest.raises(ValueError) as caught:
        settings_for(["--token-key-file", str(key_file)], home)
    assert str(caught.value) == f"the token signing key in the token key file {key_file} is 31 bytes; " \
                                "it must be at least 32"


@pytest.mark.parametrize(("make", "reason"), [
    (lambda path: None, "No such file or directory"),
    (lambda path: path.mkdir(), "Is a directory"),
])
def test_an_unreadable_key_file_is_a_clear_error(home, tmp_path, make, reason):
    key_file = tmp_path / "token.key"
    make(key_file)
    with pytest.raises(ValueError) as caught:
        settings_for(["--token-key-file", str(key_file)], home)
    assert str(caught.value) == f"cannot read the token key file {key_file}: {reason}"


def test_ttl_from_flag_or_environment(keyed):
    assert settings_for(["--token-ttl-secs", "60"], keyed).token_ttl_secs == 60
    assert settings_for([], {**keyed, "CHORUS_TOKEN_TTL_SECS": "120"}).token_ttl_secs == 120


def test_listen_from_flag_or_environment(keyed):
    assert settings_for(["--listen", "0.0.0.0:7000"], keyed).listen == "0.0.0.0:7000"
    assert settings_for([], {**keyed, "CHORUS_AUTH_LISTEN": "127.0.0.1:0"}).listen == "127.0.0.1:0"
    assert settings_for(["--listen", "[::1]:7000"], keyed).listen == "[::1]:7000"


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--listen", "nowhere"], {}, "--listen ($CHORUS_AUTH_LISTEN) must look like HOST:PORT, got 'nowhere'"),
        (["--listen", ":7000"], {}, "--listen ($CHORUS_AUTH_LISTEN) must look like HOST:PORT, got ':7000'"),
        (["--listen", "127.0.0.1:port"], {}, "--listen ($CHORUS_AUTH_LISTEN) must be a number, got 'port'"),
        ([], {"CHORUS_AUTH_LISTEN": "127.0.0.1:99999"},
         "--listen ($CHORUS_AUTH_LISTEN): port 99999 is out of range 0-65535"),
        (["--token-ttl-secs", "0"], {}, "--token-ttl-secs ($CHORUS_TOKEN_TTL_SECS) must be > 0, got '0'"),
        ([], {"CHORUS_TOKEN_TTL_SECS": "a week"},
         "--token-ttl-secs ($CHORUS_TOKEN_TTL_SECS) must be a number, got 'a week'"),
    ],
)
def test_bad_values_name_the_flag_and_variable(keyed, argv, env, message):
    with pytest.raises(ValueError) as caught:
        settings_for(argv, {**keyed, "DATABASE_URL": "sqlite:///x.db", **env})
    assert str(caught.value) == message


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings(database_url="sqlite:///x.db", token_key=KEY.encode()).listen = "elsewhere"  # type: ignore[misc]


def test_a_key_and_a_key_file_together_are_refused(home, tmp_path):
    key_file = tmp_path / "token.key"
    key_file.write_text(KEY)
    expected = ("two token signing keys: CHORUS_TOKEN_KEY and a key file "
                "(CHORUS_TOKEN_KEY_FILE / --token-key-file); set only one")
    for argv, env in [(["--token-key-file", str(key_file)], {"CHORUS_TOKEN_KEY": KEY}),
                      ([], {"CHORUS_TOKEN_KEY": KEY, "CHORUS_TOKEN_KEY_FILE": str(key_file)})]:
        with pytest.raises(ValueError) as caught:
            settings_for(argv, {**home, **env})
        assert str(caught.value) == expected


def test_every_setting_has_a_flag_and_a_variable_and_floats_keep_their_fraction(keyed, tmp_path):
    by_flags = settings_for(["--max-workers", "4", "--grace-secs", "0.5", "--login-failure-window-secs", "2.5",
                             "--ready-file", str(tmp_path / "auth.ready")], keyed)
    by_env = settings_for([], {**keyed, "CHORUS_AUTH_MAX_WORKERS": "4", "CHORUS_AUTH_GRACE_SECS": "0.5",
                               "CHORUS_LOGIN_FAILURE_WINDOW_SECS": "2.5",
                               "CHORUS_AUTH_READY_FILE": str(tmp_path / "auth.ready")})
    for settings in (by_flags, by_env):
        assert (settings.max_workers, settings.grace_secs, settings.login_failure_window_secs) == (4, 0.5, 2.5)
        assert settings.ready_file == tmp_path / "auth.ready"


def test_a_fractional_count_is_refused_not_rounded(keyed):
    with pytest.raises(ValueError) as caught:
        settings_for(["--token-ttl-secs", "2.9"], keyed)
    assert str(caught.value) == "--token-ttl-secs ($CHORUS_TOKEN_TTL_SECS) must be a whole number, got '2.9'"


def test_the_database_password_file_has_a_flag_too(keyed, tmp_path):
    (tmp_path / "pw").write_text("s3cret\n")
    settings = settings_for(["--database-url", "postgresql://chorus@db/chorus",
                             "--database-password-file", str(tmp_path / "pw")], keyed)
    assert settings.database_url == "postgresql://chorus:s3cret@db/chorus"
