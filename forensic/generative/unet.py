"""A small U-Net inpainting network, and export of the lane's networks to ONNX.

The network exists so that the ONNX path can be tested end to end without downloading
anything: tests build it with deterministic random weights (`tiny_unet`), export it with
`to_onnx`, approve the bytes by hash and run them through `generative.inpaint_learned`,
comparing with the same network run by torch. It is *not* a trained model and is never
shipped as one; a lab brings a trained inpainting model (LaMa, see models/MODEL_CARD.md).

Inputs follow the convention most inpainting exports use: the image (N x 3 x H x W, values in
[0, 1], masked pixels blanked) and the mask (N x 1 x H x W, 1 = hole); H and W multiples of
``2 ** depth``. Output: N x 3 x H x W in [0, 1] (a sigmoid).
"""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn
from torch.nn import functional as F


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.LeakyReLU(0.2),
    )


class UNetInpaint(nn.Module):
    """Encoder of ``depth`` 2x poolings, decoder of nearest upsamplings with skip connections."""

    def __init__(self, features: int = 16, depth: int = 2) -> None:
        super().__init__()
        self.depth = depth
        widths = [features * 2**k for k in range(depth + 1)]
        self.down = nn.ModuleList(
            [_block(4, widths[0])] + [_block(widths[k - 1], widths[k]) for k in range(1, depth + 1)]
        )
        self.up = nn.ModuleList(
            [_block(widths[k + 1] + widths[k], widths[k]) for k in reversed(range(depth))]
        )
        self.last = nn.Conv2d(widths[0], 3, 1)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = torch.cat((image * (1 - mask), mask), 1)
        skips = []
        for k, block in enumerate(self.down):
            x = block(x if k == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = block(torch.cat((F.interpolate(x, scale_factor=2, mode="nearest"), skip), 1))
        out: torch.Tensor = torch.sigmoid(self.last(x))
        return out


def tiny_unet(seed: int, features: int = 8, depth: int = 2) -> UNetInpaint:
    """A `UNetInpaint` with weights drawn from ``torch.Generator(seed)`` (PyTorch's default
    initialisation), in eval mode: the same seed gives the same weights on any machine."""
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = UNetInpaint(features, depth)
    finally:
        torch.random.set_rng_state(state)
    return model.eval()


def to_onnx(
    model: nn.Module,
    example: tuple[torch.Tensor, ...],
    input_names: list[str],
    *,
    opset: int = 17,
    dynamic: bool = True,
) -> bytes:
    """``model`` exported to ONNX bytes (TorchScript exporter); height and width dynamic, or
    fixed to the example's (``dynamic=False``, as face restoration exports are)."""
    axes: dict[str, dict[int, str]] | None = None
    if dynamic:
        axes = {name: {2: f"{name}_h", 3: f"{name}_w"} for name in input_names}
        axes["output"] = {2: "out_h", 3: "out_w"}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter is deprecated in favour of dynamo's, which needs onnxscript.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            example,
            buffer,  # type: ignore[arg-type]  # a file object works (torch writes to it)
            dynamo=False,
            input_names=input_names,
            output_names=["output"],
            dynamic_axes=axes,
            opset_version=opset,
        )
    return buffer.getvalue()
