"""The fake driver in tests/helpers/control.py keeps the driver's side of the controller's contract."""
from simlab.control import StartInstances, StartMigration, StopInstances, VersionCount
from tests.helpers.control import FakeFleet, build_scenario


def test_fake_fleet_makes_started_instances_ready_after_their_startup():
    fleet = FakeFleet(2, lambda version, k: [5.0, 8.0][k])
    fleet.apply(StartInstances("new", 2), now=10.0)
    assert fleet.state(14.0).new == VersionCount(alive=2, ready=0)
    assert fleet.state(15.0).new == VersionCount(alive=2, ready=1)
    assert fleet.state(18.0).new == VersionCount(alive=2, ready=2)
    assert fleet.state(18.0).old == VersionCount(alive=2, ready=2)


def test_fake_fleet_stops_not_ready_instances_first():
    fleet = FakeFleet(0, lambda version, k: [0.0, 50.0, 5.0][k])
    fleet.apply(StartInstances("new", 3), now=0.0)
    fleet.apply(StopInstances("new", 2), now=1.0)
    assert fleet.state(1.0).new == VersionCount(alive=1, ready=1)


def test_fake_fleet_runs_a_migration_for_its_duration():
    fleet = FakeFleet(1, lambda version, k: 1.0, migration_duration=30.0)
    assert fleet.state(0.0).migration == "none"
    fleet.apply(StartMigration(), now=10.0)
    assert [fleet.state(t).migration for t in (10.0, 39.0, 40.0)] == ["running", "running", "done"]


def test_build_scenario_merges_sections_and_replaces_the_strategy():
    s = build_scenario(fleet={"instances": 7}, strategy={"kind": "rolling", "batch": 2})
    assert (s.fleet.instances, s.fleet.startup, s.strategy.kind, s.strategy.batch) == (7, 10.0, "rolling", 2)
    assert build_scenario(release=None).release is None
