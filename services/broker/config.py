"""Broker settings: flags and environment, read once in the entry point."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass

from chorus.common.config import add_flag, positive

__all__ = ["Settings", "add_arguments", "settings_from_args"]

DEFAULT_ROUTER = "tcp://127.0.0.1:5555"
DEFAULT_PUB = "tcp://127.0.0.1:5556"
DEFAULT_GATEWAY_TIMEOUT_SECS = 10.0
DEFAULT_MAX_TEXT_CHARS = 4000
DEFAULT_PUB_HWM_MSGS = 100_000
DEFAULT_TICK_SECS = 0.5
ENDPOINT_SCHEMES = ("tcp://", "ipc://", "inproc://")


@dataclass(frozen=True, kw_only=True)
class Settings:
    router_endpoint: str = DEFAULT_ROUTER
    pub_endpoint: str = DEFAULT_PUB
    gateway_timeout_secs: float = DEFAULT_GATEWAY_TIMEOUT_SECS
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    pub_hwm_msgs: int = DEFAULT_PUB_HWM_MSGS
    tick_secs: float = DEFAULT_TICK_SECS


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    add_flag(parser, "--router", env=env, var="CHORUS_BROKER_ROUTER", default=DEFAULT_ROUTER,
             help="ZeroMQ endpoint the gateways' DEALERs connect to")
    add_flag(parser, "--pub", env=env, var="CHORUS_BROKER_PUB", default=DEFAULT_PUB,
             help="ZeroMQ endpoint the gateways' SUBs connect to")
    add_flag(parser, "--gateway-timeout-secs", env=env, var="CHORUS_GATEWAY_TIMEOUT_SECS",
             default=DEFAULT_GATEWAY_TIMEOUT_SECS, help="drop a gateway's sessions after this much silence")
    add_flag(parser, "--max-text-chars", env=env, var="CHORUS_MAX_TEXT_CHARS",
             default=DEFAULT_MAX_TEXT_CHARS, help="longest message text accepted")
    add_flag(parser, "--pub-hwm-msgs", env=env, var="CHORUS_BROKER_PUB_HWM",
             default=DEFAULT_PUB_HWM_MSGS, help="messages queued per gateway before it loses some")


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    return Settings(
        router_endpoint=_endpoint(args.router, "--router ($CHORUS_BROKER_ROUTER)"),
        pub_endpoint=_endpoint(args.pub, "--pub ($CHORUS_BROKER_PUB)"),
        gateway_timeout_secs=positive(args.gateway_timeout_secs, name="--gateway-timeout-secs ($CHORUS_GATEWAY_TIMEOUT_SECS)", kind=float),
        max_text_chars=positive(args.max_text_chars, name="--max-text-chars ($CHORUS_MAX_TEXT_CHARS)"),
        pub_hwm_msgs=positive(args.pub_hwm_msgs, name="--pub-hwm-msgs ($CHORUS_BROKER_PUB_HWM)"),
    )


def _endpoint(value: str, name: str) -> str:
    if not value.startswith(ENDPOINT_SCHEMES):
        raise ValueError(f"{name} must be a ZeroMQ endpoint such as {DEFAULT_ROUTER}, got {value!r}")
    return value
