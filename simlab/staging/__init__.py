"""Real staging: the service under test, HAProxy, Prometheus, the supervisor and the deployer.

Imports `control`, never the engines; heavy modules (aiohttp, Locust) load only where used.

The deployer (deployer.py) drives a `target.DeployTarget`: the local staging
(local_fleet.py) or a team's own (external.py, exercised through target_ctl.py).
The local staging is run by the supervisor (supervisor.py: lifecycle, faults,
reaping), which places instances in processes or shared hosts (members.py),
records them in a state file (state.py) and starts them through procs.py,
haproxy.py and prometheus.py. An instance's process is instance_main.py:
service.py (one instance) or host.py (several), with the release's defects
from behaviour.py. Load comes from Locust (load.py, locustfile.py, shape.py);
faults from faults.py; signals.py turns SIGTERM/SIGINT into a clean interrupt.
"""
