"""The downstream settings pre-trained backbones are judged in (Diffusion-ReID, section 4)."""

from diffreid.settings.run import run

__all__ = ["run"]
