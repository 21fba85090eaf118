"""Opaque ids: short, random, URL- and topic-safe (no NUL, no slash)."""

import secrets

__all__ = ["new_id"]


def new_id(prefix: str) -> str:
    """A new id such as ``g_3f9a0c1d2b4e5f60``; the prefix only helps people reading logs."""
    return f"{prefix}_{secrets.token_hex(8)}"
