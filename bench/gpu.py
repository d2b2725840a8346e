"""torch implementations of the FFT deconvolutions, run where a CUDA GPU is present.

Imported only when one is (`bench.harness.detect_gpu`); on a CPU-only machine torch is not
imported at all. Each takes a uint8 image and returns uint8 (host to device and back counted),
and follows `bench.plain` step for step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bench.plain import laplacian, mirror_pad, transfer


class Torch:
    def __init__(self, device: str) -> None:
        self.device = torch.device(device)

    def _to(self, array: Any) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    def _out(self, values: torch.Tensor) -> Any:
        scaled = torch.clamp(torch.round(values * 255.0), 0, 255).to(torch.uint8)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return scaled.cpu().numpy()

    def wiener(self, image: Any, kernel: Any, balance: float, pad: int) -> Any:
        padded, crop = mirror_pad(image.astype(np.float32) / 255.0, pad)
        shape = (padded.shape[0], padded.shape[1])
        h = self._to(transfer(kernel, shape))
        d2 = self._to(np.abs(laplacian(shape).real) ** 2)
        filt = torch.conj(h) / (h.abs() ** 2 + balance * d2)
        out = torch.fft.irfft2(torch.fft.rfft2(self._to(padded)) * filt, s=shape)
        return self._out(out[crop])

    def richardson_lucy(self, image: Any, kernel: Any, iterations: int, pad: int) -> Any:
        padded, crop = mirror_pad(image.astype(np.float32) / 255.0, pad)
        shape = (padded.shape[0], padded.shape[1])
        h = self._to(transfer(kernel, shape))
        hc = torch.conj(h)
        observed = self._to(padded)
        estimate = torch.full(shape, 0.5, dtype=torch.float32, device=self.device)
        for _ in range(iterations):
            conv = torch.fft.irfft2(torch.fft.rfft2(estimate) * h, s=shape)
            ratio = observed / (conv + 1e-12)
            estimate = estimate * torch.fft.irfft2(torch.fft.rfft2(ratio) * hc, s=shape)
        return self._out(estimate[crop])
