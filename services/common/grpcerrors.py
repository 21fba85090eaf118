"""Domain errors to gRPC status, once, at the servicer boundary.

Each service declares a table {error class: status}; ``reports_errors`` wraps
every servicer method so that an error of the service's own hierarchy is
answered with its status (nearest class in the table, else INTERNAL) and its
human message, and anything else is a bug of ours: logged with its traceback
(never the request, which may carry passwords or tokens) and answered INTERNAL
with a fixed text, while the server keeps serving.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping

import grpc

__all__ = ["status_for", "reports_errors"]


def status_for(error: Exception, table: Mapping[type, grpc.StatusCode]) -> grpc.StatusCode:
    """The status of ``error``'s own class in ``table``, else its nearest ancestor's, else INTERNAL."""
    for cls in type(error).__mro__:
        if cls in table:
            return table[cls]
    return grpc.StatusCode.INTERNAL


def reports_errors(base: type[Exception], table: Mapping[type, grpc.StatusCode], *,
                   log: logging.Logger, internal_details: str):
    """A decorator for servicer methods mapping ``base`` errors through ``table``."""
    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, request, context: grpc.ServicerContext):
            try:
                return method(self, request, context)
            except base as error:
                code, details = status_for(error, table), str(error)
            except Exception:
                log.exception("%s failed unexpectedly", method.__name__)
                code, details = grpc.StatusCode.INTERNAL, internal_details
            context.abort(code, details)  # raises; outside the try so it is never caught above
        return wrapper
    return decorate
