"""Contract fake of ``hailo_sdk_client.model_translator.exceptions`` (tests only)."""


class ParsingWithRecommendationException(Exception):
    """Aggregate parser failure; the message lists per-node errors and recommended end nodes."""


class MisspellNodeError(Exception):
    pass


class UnsupportedModelError(Exception):
    pass
