"""`chorus up`: every service as its own process, supervised; only the page on a public address.

config.py: the settings; plan.py: what runs where (no I/O); child.py: one process and
its output; supervisor.py: restarts with backoff; up.py: start, watch, stop.
"""

from chorus.launcher.config import Settings, add_arguments, settings_from_args
from chorus.launcher.up import ensure_token_key, run

__all__ = ["Settings", "add_arguments", "settings_from_args", "run", "ensure_token_key"]
