"""Which keys folder a service loads its internal-traffic keys from (``--keys-dir``), or none
when a person chose ``--insecure-plaintext``. Shared by ZeroMQ's CURVE (chorus.common.curve)
and gRPC's TLS (chorus.common.grpctls), so one pair of settings turns both on or off."""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = ["KeysError", "service_folder"]

log = logging.getLogger(__name__)


class KeysError(ValueError):
    """No keys and no --insecure-plaintext, a keys folder missing a file, or a file that is not
    the key or certificate it should be; the message names the setting or the file."""


def service_folder(keys_dir: Path | None, insecure_plaintext: bool) -> Path | None:
    """The folder to load keys from; None when a person chose plaintext on purpose."""
    if keys_dir is not None:
        folder = keys_dir.expanduser()
        if not folder.is_dir():
            raise KeysError(f"--keys-dir: {keys_dir} is not a folder")
        return folder
    if insecure_plaintext:
        log.warning("internal traffic is NOT authenticated or encrypted (--insecure-plaintext)")
        return None
    raise KeysError("--keys-dir is needed: internal traffic is authenticated and encrypted (`chorus keys DIR` "
                    "makes the keys; `chorus up` does it for you), or give --insecure-plaintext on a network "
                    "nobody else can reach")
