"""The rollout controller and its vocabulary; pure, no simpy, no HTTP, no clock."""
from simlab.control.controller import PERIOD, Phase, RolloutController
from simlab.control.observations import (
    Action,
    ControlEvent,
    FleetState,
    MetricsView,
    SetWeight,
    StartInstances,
    StartMigration,
    StopInstances,
    VersionCount,
    WindowStats,
)

__all__ = [
    "PERIOD", "Phase", "RolloutController", "Action", "ControlEvent", "FleetState", "MetricsView", "SetWeight",
    "StartInstances", "StartMigration", "StopInstances", "VersionCount", "WindowStats",
]
