"""`chorus up`: every service as its own process, supervised; only the page on a public address.

config.py: the settings; plan.py: what runs where (no I/O); child.py: one process and
its output; supervisor.py: restarts with backoff; up.py: start, watch, stop. Nothing is
imported here, so that reading `chorus up`'s flags (chorus.cli builds every command's parser)
does not load what only running it needs.
"""
