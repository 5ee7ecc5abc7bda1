"""`simlab calibrate`: what the simulator needs (service time, capacity, start-up), measured on staging.

`calibrate.calibrate_live` and `calibrate.calibrate_recorded` return a scenario fragment; `fragment.overlay`
merges one into a scenario (`simlab run/compare --calibration`). See docs/staging.md.
"""
