"""Repo-level pytest configuration: Hypothesis profiles. Everything else comes from the hailo_qa plugin."""
import os

from hypothesis import HealthCheck, settings

# HailoRT writes hailort.log into the working directory (the checkout) unless told otherwise: not in tests.
os.environ.setdefault("HAILORT_LOGGER_PATH", "NONE")

settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("hw", max_examples=5, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
