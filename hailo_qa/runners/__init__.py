"""Runners: one protocol, several backends. Vendor-backed runners import their SDK lazily."""
from hailo_qa.runners.base import BackendInfo, BaseRunner, Runner, TensorMeta

__all__ = ["BackendInfo", "BaseRunner", "Runner", "TensorMeta"]
