"""A TCP fault proxy between a device and a server: latency, jitter, a bandwidth cap, cuts at byte N or at
time t, a black hole, refusal; changed while a test runs, every fault recorded (proxy.py says why it is
ours rather than Toxiproxy or tc netem).

`faults.py` holds the settings (`LinkFaults`, `ByteCut`), `bucket.py` the bandwidth cap's token bucket,
`link_state.py` the faults as the proxy's loop sees them, `connection.py` one proxied connection,
`stats.py` the counters and waits on them, `events.py` what it reports, `proxy.py` the service.
"""

from harness.fault_proxy.events import ProxyEvent
from harness.fault_proxy.faults import ByteCut, LinkFaults
from harness.fault_proxy.proxy import FaultProxy, FaultProxyFactory, upstream_address
from harness.fault_proxy.stats import ProxyStats

__all__ = ["ByteCut", "FaultProxy", "FaultProxyFactory", "LinkFaults", "ProxyEvent", "ProxyStats", "upstream_address"]
