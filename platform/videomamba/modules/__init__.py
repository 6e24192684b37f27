"""nn.Modules of VideoMamba, built on :mod:`videomamba.ops`."""

from .bimamba import BiMamba
from .block import Block
from .norm import RMSNorm, add_rms_norm, rms_norm
from .patch_embed import PatchEmbed
from .pos_embed import resize_spatial_pos_embed, resize_temporal_pos_embed
from .tokens import take_tokens

__all__ = ["BiMamba", "Block", "RMSNorm", "rms_norm", "add_rms_norm", "PatchEmbed",
           "resize_spatial_pos_embed", "resize_temporal_pos_embed", "take_tokens"]
