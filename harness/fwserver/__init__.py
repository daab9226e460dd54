"""Firmware image server: aiohttp in its own thread and loop, with a fault plan per artifact.

Each artifact gets a unique URL path. Its `FaultPlan` (faults.py) decides how it is served: throttled,
stalled, cut, truncated, corrupted, with an error status, behind redirects, without Range support, chunked
or with late headers. Every request is logged as a `RequestRecord` (request_log.py), and tests wait on that
log with a deadline instead of sleeping. The `FirmwareServer` (server.py) serves HTTP, or HTTPS with a
throwaway CA whose PEM (`ca_pem`) is what a device is given.
"""

from harness.fwserver.faults import Artifact, FaultPlan
from harness.fwserver.request_log import RequestLog, RequestRecord
from harness.fwserver.server import CHUNK_SIZE, SHUTDOWN_GRACE_S, FirmwareServer, RangeNotSatisfiable, parse_range

__all__ = [
    "CHUNK_SIZE", "SHUTDOWN_GRACE_S", "Artifact", "FaultPlan", "FirmwareServer", "RangeNotSatisfiable",
    "RequestLog", "RequestRecord", "parse_range",
]
