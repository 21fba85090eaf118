"""`chorus keys DIR`: the folders each service is given, their permissions, and what running it
again keeps or renews. Files only; the certificates at work are tests/test_grpc_tls.py."""

from __future__ import annotations

import datetime
import stat

import pytest
from cryptography import x509

from chorus.cli import main
from chorus.common import certs
from chorus.common.grpcauth import Holder
from chorus.common.grpcauth import UnknownPermission, parse_permissions
from chorus.common.keys import ensure_keys, issue_backend
from chorus.common.keysdir import KeysError

NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
SERVICE_FOLDERS = ("auth", "membership", "broker", "gateway")
SECRETS = ("ca.key", "grpc-server.key", "grpc-client.key", "curve.key_secret")


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def certificate(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def snapshot(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def hosts_of(path) -> set[str]:
    names = certificate(path).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n.value) for n in names}


def test_each_service_folder_holds_its_own_certificates_and_not_the_cas_key(tmp_path):
    root = ensure_keys(tmp_path / "keys", now=NOW)
    ca = certificate(root / "ca" / "ca.crt")
    for folder in SERVICE_FOLDERS:
        files = {p.name for p in (root / folder).iterdir()}
        assert "ca.key" not in files and "ca.crt" in files, folder
        assert (root / folder / "ca.crt").read_bytes() == (root / "ca" / "ca.crt").read_bytes()
        client = certificate(root / folder / "grpc-client.crt")
        client.verify_directly_issued_by(ca)
        assert certs.holder_of(client) == Holder(name=folder, role=folder, permissions=frozenset())
    for server in ("auth", "membership", "broker"):
        assert hosts_of(root / server / "grpc-server.crt") == {"localhost", "127.0.0.1", "::1", server}
    assert not (root / "gateway" / "grpc-server.crt").exists(), "the gateway serves no gRPC"


def test_secrets_are_0600_in_0700_folders(tmp_path):
    root = ensure_keys(tmp_path / "keys", now=NOW)
    issue_backend(root, "billing", frozenset({"messages.PostMessage"}), now=NOW)
    for path in [root, *root.rglob("*")]:
        if path.is_dir():
            assert mode(path) == 0o700, path
        elif path.name in SECRETS:
            assert mode(path) == 0o600, path
        else:
            assert mode(path) == 0o644, path  # certificates and CURVE public keys


def test_running_it_again_keeps_every_file(tmp_path):
    root = ensure_keys(tmp_path / "keys", now=NOW)
    before = snapshot(root)
    ensure_keys(root, now=NOW + datetime.timedelta(days=100))
    assert snapshot(root) == before


def test_another_server_name_renews_only_the_server_certificates_and_keeps_their_keys(tmp_path):
    root = ensure_keys(tmp_path / "keys", now=NOW)
    before = snapshot(root)
    ensure_keys(root, server_names=["chorus.internal", "10.1.2.3"], now=NOW)
    after = snapshot(root)
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {"auth/grpc-server.crt", "membership/grpc-server.crt", "broker/grpc-server.crt"}
    assert {"chorus.internal", "10.1.2.3", "auth"} <= hosts_of(root / "auth" / "grpc-server.crt")
    ensure_keys(root, now=NOW)  # without the names: they stay
    assert snapshot(root) == after


def test_a_certificate_near_its_end_is_renewed_with_the_same_key(tmp_path):
    root = ensure_keys(tmp_path / "keys", now=NOW)
    before = snapshot(root)
    near_the_end = NOW + datetime.timedelta(days=certs.LEAF_VALIDITY_DAYS - certs.RENEW_WITHIN_DAYS + 1)
    ensure_keys(root, now=near_the_end)
    renewed = certificate(root / "gateway" / "grpc-client.crt")
    assert renewed.not_valid_after_utc > NOW + datetime.timedelta(days=certs.LEAF_VALIDITY_DAYS)
    assert snapshot(root)["gateway/grpc-client.key"] == before["gateway/grpc-client.key"]
    assert snapshot(root)["ca/ca.key"] == before["ca/ca.key"]


def test_a_backend_certificate_states_its_permissions_and_is_renewed_when_they_change(tmp_path):
    root = ensure_keys(tmp_path / "keys", now=NOW)
    folder = issue_backend(root, "billing", parse_permissions("messages.PostMessage"), now=NOW)
    assert folder == root / "backends" / "billing"
    first = certs.holder_of(certificate(folder / "grpc-client.crt"))
    assert first == Holder("billing", "backend", frozenset({"messages.PostMessage"}))
    issue_backend(root, "billing", parse_permissions("messages.*, membership.JoinGroup"), now=NOW)
    assert certs.holder_of(certificate(folder / "grpc-client.crt")).permissions == \
        {"messages.*", "membership.JoinGroup"}


def test_a_backend_needs_the_deployments_ca_and_a_plain_name(tmp_path):
    with pytest.raises(KeysError, match="no CA here"):
        issue_backend(tmp_path / "empty", "billing", frozenset({"messages.PostMessage"}))
    root = ensure_keys(tmp_path / "keys", now=NOW)
    for bad in ("", "../auth", "Billing", "a" * 64, "-x"):
        with pytest.raises(KeysError, match="a backend's name is 1 to 63 of a-z, 0-9 and '-'"):
            issue_backend(root, bad, frozenset({"messages.PostMessage"}))


def test_unknown_permissions_are_refused_naming_them():
    with pytest.raises(UnknownPermission, match="unknown permission 'messages.Post'; the valid ones: auth.*"):
        parse_permissions("messages.Post")
    with pytest.raises(UnknownPermission, match="no permissions given"):
        parse_permissions(" , ")
    assert parse_permissions("auth.GetAccounts,membership.*") == {"auth.GetAccounts", "membership.*"}


@pytest.mark.parametrize("argv, complaint", [
    (["--backend", "billing"], "--backend NAME and --allow PERMISSIONS go together"),
    (["--allow", "messages.PostMessage"], "--backend NAME and --allow PERMISSIONS go together"),
    (["--backend", "billing", "--allow", "messages.Post"], "--allow: unknown permission 'messages.Post'"),
    (["--backend", "Bad_Name", "--allow", "messages.*"], "--backend 'Bad_Name': a backend's name is"),
])
def test_the_command_names_what_is_wrong(tmp_path, capsys, argv, complaint):
    with pytest.raises(SystemExit) as exit_info:
        main(["keys", str(tmp_path / "keys"), *argv], env={})
    assert exit_info.value.code == 2
    assert complaint in capsys.readouterr().err
    assert not (tmp_path / "keys").exists(), "nothing is made from a wrong command"


def test_the_command_makes_a_backends_folder(tmp_path, capsys):
    assert main(["keys", str(tmp_path / "keys"), "--backend", "billing",
                 "--allow", "messages.PostMessage,messages.ListMessages"], env={}) == 0
    out = capsys.readouterr().out
    assert "backend 'billing' may call messages.ListMessages, messages.PostMessage" in out
    assert str(tmp_path / "keys" / "backends" / "billing") in out
