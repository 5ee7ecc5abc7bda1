"""Chaos Toolkit controls simlab provides: `simlab.chaos.controls.blast_radius` stops a run that hurts users too much.

A control is a module named in an experiment's `controls` (or chaos's
settings); chaoslib calls its `configure_control`, `before_*_control` and
`after_*_control` functions around the run, the method and every activity.
"""
