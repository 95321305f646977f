"""The downstream settings pre-trained backbones are judged in (Diffusion-ReID, section 4)."""

from diffreid.settings.run import SETTINGS, Setting, run

__all__ = ["SETTINGS", "Setting", "run"]
