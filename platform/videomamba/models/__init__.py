"""VideoMamba models and scan orders."""

from .scan_order import SCAN_ORDERS
from .videomamba import VideoMamba, create_model, list_models, register_model

__all__ = ["VideoMamba", "create_model", "list_models", "register_model", "SCAN_ORDERS"]
