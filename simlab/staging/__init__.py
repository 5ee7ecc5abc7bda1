"""Real staging: the service under test, HAProxy, Prometheus, the supervisor and the deployer.

Imports `control`, never the engines; heavy modules (aiohttp, Locust) load only where used.
"""
