"""Contract fake of ``hailo_sdk_client.model_translator`` (tests only)."""
