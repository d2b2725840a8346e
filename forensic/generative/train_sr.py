"""Train the built-in super-resolution models and write their model card.

    python -m forensic.generative.train_sr [--steps 1500] [--seed 20261124]

Trains x2 and x4 `ResidualESPCN` models on luma patches from images that scikit-image's wheel
ships, with fixed seeds and deterministic CPU algorithms, evaluates them against bicubic on
held-out images, and writes ``models/sr_x{2,4}.safetensors`` and ``models/MODEL_CARD.md``
with the measured numbers. Low-resolution inputs are made by area averaging (OpenCV
INTER_AREA), the degradation the model learns to undo.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import time
from typing import Any

import cv2
import numpy as np
import torch
from numpy.typing import NDArray
from safetensors.torch import save_file
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from forensic.generative.sr import BT601, MODELS, ResidualESPCN, bicubic, enlarge_luma, load_model

TRAIN = (
    "astronaut", "camera", "coins", "moon", "brick", "grass", "gravel", "page", "text",
    "cell", "retina", "immunohistochemistry", "hubble_deep_field",
)  # fmt: skip
HELD_OUT = ("chelsea", "coffee", "rocket")


def luma(name: str) -> NDArray[np.float64]:
    image = getattr(data, name)()
    values = image.astype(np.float64) / 255.0
    if values.ndim == 3:
        values = values[..., :3] @ BT601
    return np.asarray(values, np.float64)


def degrade(hr: NDArray[np.float64], scale: int) -> NDArray[np.float64]:
    h, w = hr.shape
    h, w = h - h % scale, w - w % scale
    crop = hr[:h, :w]
    return np.asarray(
        cv2.resize(crop.astype(np.float32), (w // scale, h // scale), interpolation=cv2.INTER_AREA),
        np.float64,
    )


def train(scale: int, *, steps: int, seed: int) -> tuple[ResidualESPCN, float]:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(seed)
    images = [luma(n) for n in TRAIN]
    model = ResidualESPCN(scale)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    patch, batch = 24, 16
    started = time.perf_counter()
    for step in range(steps):
        lows, bases, highs = [], [], []
        for _ in range(batch):
            hr = images[int(rng.integers(len(images)))]
            size = patch * scale
            y = int(rng.integers(0, hr.shape[0] - size))
            x = int(rng.integers(0, hr.shape[1] - size))
            crop = hr[y : y + size, x : x + size]
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            low = degrade(crop, scale)
            lows.append(low)
            bases.append(bicubic(low, scale))
            highs.append(crop)
        tensor = lambda items: torch.from_numpy(np.stack(items).astype(np.float32))[:, None]  # noqa: E731
        prediction = model(tensor(lows), tensor(bases))
        loss = torch.nn.functional.l1_loss(prediction, tensor(highs))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step == int(steps * 0.7):
            for group in optimiser.param_groups:
                group["lr"] = 2e-4
    return model, time.perf_counter() - started


def evaluate(scale: int) -> list[dict[str, Any]]:
    rows = []
    for name in HELD_OUT:
        hr = luma(name)
        low = degrade(hr, scale)
        truth = hr[: low.shape[0] * scale, : low.shape[1] * scale]
        base = np.clip(bicubic(low, scale), 0, 1)
        ours = np.clip(enlarge_luma(low, scale), 0, 1)
        rows.append(
            {
                "image": name,
                "bicubic_psnr": peak_signal_noise_ratio(truth, base, data_range=1.0),
                "model_psnr": peak_signal_noise_ratio(truth, ours, data_range=1.0),
                "bicubic_ssim": structural_similarity(truth, base, data_range=1.0),
                "model_ssim": structural_similarity(truth, ours, data_range=1.0),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=20261124)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    MODELS.mkdir(exist_ok=True)
    lines = []
    for scale in (2, 4):
        model, seconds = train(scale, steps=args.steps, seed=args.seed + scale)
        save_file(model.state_dict(), str(MODELS / f"sr_x{scale}.safetensors"))
        load_model.cache_clear()
        rows = evaluate(scale)
        gain = min(r["model_psnr"] - r["bicubic_psnr"] for r in rows)
        lines.append(f"### x{scale}\n")
        lines.append(f"Trained {args.steps} steps, seed {args.seed + scale}, {seconds:.0f} s.\n")
        lines.append("| held-out image | bicubic PSNR | model PSNR | bicubic SSIM | model SSIM |")
        lines.append("|---|---|---|---|---|")
        for r in rows:
            lines.append(
                f"| {r['image']} | {r['bicubic_psnr']:.2f} dB | {r['model_psnr']:.2f} dB | "
                f"{r['bicubic_ssim']:.4f} | {r['model_ssim']:.4f} |"
            )
        lines.append(f"\nSmallest PSNR gain over bicubic: {gain:.2f} dB.\n")
        digest = hashlib.sha256((MODELS / f"sr_x{scale}.safetensors").read_bytes()).hexdigest()
        lines.append(f"Weights `sr_x{scale}.safetensors`, SHA-256 `{digest}`.\n")
        print(f"x{scale}: smallest gain {gain:.3f} dB in {seconds:.0f} s")
    card = MODELS / "MODEL_CARD.md"
    card.write_text(_CARD.format(
        command=f"python -m forensic.generative.train_sr --steps {args.steps} --seed {args.seed}",
        train=", ".join(TRAIN), held=", ".join(HELD_OUT), torch=torch.__version__,
        machine=f"{platform.machine()}, {torch.get_num_threads()} CPU threads",
        results="\n".join(lines),
    ))  # fmt: skip


_CARD = """# Built-in super-resolution models (x2, x4)

Generated by `{command}`; the numbers below were measured by that run.

* **Use:** `generative.super_resolution` (lane *generative*: every output pixel is inferred).
  Investigative leads only, never identification.
* **Architecture:** residual ESPCN on BT.601 luma: conv 5x5 (1->32) + tanh, conv 3x3 (32->32) +
  tanh, conv 3x3 (32->r^2), pixel shuffle, added to OpenCV's bicubic enlargement. Chroma is
  bicubic only. See `forensic/generative/sr.py`.
* **Training data:** images shipped in scikit-image 0.26's wheel: {train}. Luma, random
  24 x 24 low-resolution patches (and their horizontal mirror), batch 16.
* **Held out for evaluation:** {held}.
* **Degradation modelled:** area averaging by the scale factor (OpenCV INTER_AREA). Other
  degradations (blur, noise, compression) are not modelled: on real CCTV the model can invent
  detail that was never there.
* **Optimisation:** Adam, learning rate 1e-3, then 2e-4 after 70 % of the steps; L1 loss.
* **Determinism:** torch.manual_seed and numpy seeds fixed, deterministic algorithms, two CPU
  threads for training. Inference runs on the device the run chose (`enhance --device`,
  within the policy's `generative.devices`): one CPU thread with oneDNN off, or a CUDA GPU
  with TF32 and cuDNN autotuning off; tile by tile (256-pixel tiles, 8 pixels of context,
  crop-centre), which gives the one-pass result bit for bit since the context covers the
  network's receptive field (4 pixels). The device is recorded with each step. Compare the
  weights' SHA-256 below with a rerun of the command to check reproducibility on your machine.
* **Environment:** torch {torch}; {machine}.

## Results (luma, held-out images)

{results}
"""


if __name__ == "__main__":
    main()
