"""Engines turn a scenario and a seed into a Result; each drives the shared rollout controller."""
