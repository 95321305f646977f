"""Identity guidance: a Re-ID model steers the first denoising steps towards the reference person.

Training-free guidance in the manner of Universal Guidance and FreeDoM: at a guided step the
solver's prediction of the clean latents is decoded, its Re-ID features are compared with the
references', and the prediction is moved one step down the gradient of that distance before
the solver uses it. Identity then comes from a model trained to tell people apart, not only
from what a small UNet learnt to keep of one photograph. The last steps are left unguided,
so the UNet draws the picture back towards images it knows, rather than leaving a pattern
that only the guiding model reads as the person. The guide should not be the model that
judges the result: a gain read by the guide itself says nothing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from diffreid.errors import DiffreidError
from diffreid.reid.loading import load_reid_model
from diffreid.reid.torch_model import TorchReidModel
from diffreid.synthesis.codec import LatentCodec


class IdentityGuidance:
    """`scale`: each guided step moves the clean prediction by this root-mean-square distance in
    latent units (latents are normalised to about unit spread); `until`: the share of the steps
    guided, from the first."""

    def __init__(self, reid: TorchReidModel, codec: LatentCodec, scale: float, until: float = 0.6):
        if scale < 0 or not 0 < until <= 1:
            raise DiffreidError(f"identity guidance {scale:g} until {until:g}: the scale is ≥ 0 and the share of "
                                "steps guided in (0, 1]")
        self.reid, self.codec, self.scale, self.until = reid, codec, scale, until

    @classmethod
    def load(cls, model: str, codec: LatentCodec, scale: float, until: float = 0.6, device=None) -> "IdentityGuidance":
        reid = load_reid_model(model, device=device)
        if not isinstance(reid, TorchReidModel):
            raise DiffreidError(f"{model}: identity guidance follows the Re-ID model's gradients, which an ONNX "
                                "model does not give; pass a PyTorch one (torchreid .pth weights or a diffreid run)")
        for parameter in reid.module.parameters():
            parameter.requires_grad_(False)
        return cls(reid, codec, scale, until)

    @torch.no_grad()
    def targets(self, pixels: list[torch.Tensor]) -> torch.Tensor:
        """One unit feature per image from its references' pixels (N×3×H×W in [0, 1], one batch per
        reference slot): the mean of their features, so several photographs pull together."""
        features = sum(F.normalize(self.reid.embed(p), dim=1) for p in pixels)
        return F.normalize(features, dim=1)

    def guides(self, step: int, steps: int) -> bool:
        return self.scale > 0 and step < math.ceil(self.until * steps)

    def steer(self, clean: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The clean latents moved down the gradient of their decoded images' cosine distance to `targets`."""
        with torch.enable_grad():
            x = clean.detach().float().requires_grad_()
            features = F.normalize(self.reid.embed(self.codec.decode(x.to(clean.dtype)).float()), dim=1)
            distance = (1 - (features * targets.to(features)).sum(1)).sum()
            (gradient,) = torch.autograd.grad(distance, x)
        rms = gradient.flatten(1).norm(dim=1).clamp_min(1e-12) / math.sqrt(gradient[0].numel())
        return (x - self.scale * gradient / rms.view(-1, 1, 1, 1)).detach().to(clean.dtype)

    def steer_prediction(self, prediction: torch.Tensor, latents: torch.Tensor, alpha_cumprod: torch.Tensor,
                         prediction_type: str, targets: torch.Tensor) -> torch.Tensor:
        """The UNet's output rewritten so that the clean latents it implies are the steered ones."""
        alpha, sigma = alpha_cumprod.sqrt().to(latents), (1 - alpha_cumprod).sqrt().to(latents)
        if prediction_type == "v_prediction":
            clean = alpha * latents - sigma * prediction
        elif prediction_type == "epsilon":
            clean = (latents - sigma * prediction) / alpha
        elif prediction_type == "sample":
            clean = prediction
        else:
            raise DiffreidError(f"identity guidance: unknown prediction type {prediction_type!r}")
        shift = self.steer(clean, targets) - clean
        if prediction_type == "v_prediction":
            return prediction - shift / sigma
        if prediction_type == "epsilon":
            return prediction - shift * alpha / sigma
        return prediction + shift
