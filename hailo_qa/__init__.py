"""hailo-qa: validation and regression for neural networks deployed on the Hailo-8 NPU."""
from hailo_qa.errors import QAError

__all__ = ["QAError"]
__version__ = "0.1.0"
