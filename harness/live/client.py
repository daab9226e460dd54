"""A client of the live view's event stream (`/events`), for scripts and tests: wait for what the page would show.

`wait_event(url, predicate, timeout)` reads the stream (the snapshot first, then each event as it happens) until
`predicate(event)` holds, and returns that event; at the deadline it raises with the last events it saw.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

Event = dict[str, Any]


class EventTimeout(AssertionError, TimeoutError):
    """The awaited event did not come; the message lists the last ones that did."""


def wait_event(page_url: str, predicate: Callable[[Event], bool], timeout: float = 10.0,
               what: str = "a matching event") -> Event:
    parts = urlsplit(page_url)
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        connection.request("GET", "/events", headers={"Accept": "text/event-stream"})
        response = connection.getresponse()
        if response.status != 200:
            raise EventTimeout(f"{page_url}events answered HTTP {response.status}")
        while (remaining := deadline - time.monotonic()) > 0:
            if connection.sock is not None:
                connection.sock.settimeout(remaining)
            try:
                line = response.readline()
            except TimeoutError:
                break
            if not line:
                raise EventTimeout(f"{page_url}events ended while waiting for {what}; last events:\n"
                                   + "\n".join(seen[-10:]))
            if not line.startswith(b"data: "):
                continue
            event = json.loads(line[len(b"data: "):])
            seen.append(json.dumps(event)[:300])
            if predicate(event):
                return event
    finally:
        connection.close()
    raise EventTimeout(f"no {what} from {page_url}events within {timeout} s; last events:\n" + "\n".join(seen[-10:]))
