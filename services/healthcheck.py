"""`chorus health`: is a Chorus service answering? For container HEALTHCHECKs and scripts.

    chorus health grpc 127.0.0.1:50051 --keys-dir DIR/auth   # grpc.health.v1 (auth, membership, broker)
    chorus health http http://127.0.0.1:8080/healthz

A gRPC check speaks mutual TLS like every other caller, with the certificate in
``--keys-dir`` (a service's own folder will do: any certificate from the deployment's
CA may ask for health), or plaintext with ``--insecure-plaintext``.

Exit code 0 when healthy, 1 when not (with one line on stderr saying why), 2 when
the keys cannot be used.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from chorus.common.config import INSECURE_PLAINTEXT, KEYS_DIR, OptionalPath, PositiveFloat, parse_host_port
from chorus.common.keysdir import KeysError
from chorus.common.settings import Setting, add_flags, named, read, table

__all__ = ["Probe", "add_arguments", "settings_from_args", "run"]

DEFAULT_TIMEOUT_SECS = 3.0


@dataclass(frozen=True, kw_only=True)
class Probe:
    kind: str       # "grpc" or "http"
    target: str     # HOST:PORT or URL
    timeout_secs: Annotated[PositiveFloat, Setting(
        "--timeout-secs", "CHORUS_HEALTH_TIMEOUT_SECS", "give up after this long")] = DEFAULT_TIMEOUT_SECS
    keys_dir: Annotated[OptionalPath, KEYS_DIR] = None
    insecure_plaintext: Annotated[bool, INSECURE_PLAINTEXT] = False


_TABLE = table(Probe)


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    parser.add_argument("kind", choices=["grpc", "http"], help="how to ask")
    parser.add_argument("target", help="HOST:PORT for grpc, a URL for http")
    add_flags(parser, _TABLE)


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> Probe:
    if args.kind == "grpc":
        try:
            parse_host_port(args.target)
        except ValueError as exc:
            raise ValueError(named("target", str(exc))) from None
    elif not args.target.startswith(("http://", "https://")):
        raise ValueError(f"target {args.target!r} is not an http:// or https:// URL")
    return Probe(kind=args.kind, target=args.target, **read(_TABLE, args, env))


def run(probe: Probe) -> int:
    try:
        problem = _grpc(probe) if probe.kind == "grpc" else _http(probe)
    except KeysError as exc:
        print(f"chorus health: {exc}", file=sys.stderr)
        return 2
    if problem:
        print(f"unhealthy: {probe.target}: {problem}", file=sys.stderr)
        return 1
    return 0


def _grpc(probe: Probe) -> str | None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from chorus.common.grpctls import ClientTls, channel as open_channel

    tls = ClientTls.for_service(probe.keys_dir, probe.insecure_plaintext)
    with open_channel(probe.target, tls) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=probe.timeout_secs)
        except grpc.RpcError as exc:
            return f"{exc.code().name}: {exc.details()}"
    if answer.status != health_pb2.HealthCheckResponse.SERVING:
        return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    return None


def _http(probe: Probe) -> str | None:
    try:
        with urllib.request.urlopen(probe.target, timeout=probe.timeout_secs) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        return str(getattr(exc, "reason", exc))
    return None if status == 200 else f"HTTP {status}"
