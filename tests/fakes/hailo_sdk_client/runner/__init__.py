"""Contract fake of ``hailo_sdk_client.runner`` (tests only)."""
