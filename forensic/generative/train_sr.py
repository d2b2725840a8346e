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

## Models a lab brings (ONNX)

Besides these two built-in networks, the lane runs models a laboratory supplies as ONNX
files, through onnxruntime: super-resolution (`generative.onnx_super_resolution`), face
restoration (`generative.face_restoration`, only inside a region the examiner marks) and
learned inpainting (`generative.inpaint_learned`, and `generative.fill_defects` with
`method = "learned"`, which fills the defect mask of `detect_defects`). Every pixel they write
is marked inferred; face restoration and inpainting replace only the marked pixels.

* **No weights ship with forensic and none are downloaded at run time.** A lab obtains a
  model itself, from its authors' release, and reads its licence there. Known sources (check
  each licence at the source before use): super-resolution, Real-ESRGAN
  (github.com/xinntao/Real-ESRGAN, BSD-3-Clause code; its `.pth` releases load with
  `forensic.generative.rrdbnet.from_state_dict` and export with
  `forensic.generative.unet.to_onnx`); face restoration, GFPGAN
  (github.com/TencentARC/GFPGAN, Apache-2.0 with parts under other licences) or CodeFormer
  (github.com/sczhou/CodeFormer, S-Lab License 1.0: non-commercial use only); inpainting,
  LaMa (github.com/advimman/lama, Apache-2.0) and its community ONNX exports.
* **Shape of the file.** NCHW float32; one image input (inpainting: image, then mask). A model
  with further inputs (CodeFormer's fidelity weight) must be exported with them fixed inside
  a wrapper module. Face restoration and LaMa exports usually take a fixed 512 x 512 input
  (declare `input_size = 512`); the region's bounding box (inpainting: the mask's, grown by
  `context` pixels) is resized to it and back.
* **Approving a model.** `forensic model approve FILE --task TASK [--channels RGB|BGR|grey]
  [--input-range 0,1] [--output-range 0,1] [--scale N] [--input-size N] [--pad-multiple N]
  [--mask hole=1|hole=0] [--name TEXT] [--json]` reads the file once, hashes it, checks the
  declaration against the graph with a trial run on a blank input, and prints the policy
  entry: `[[profiles.NAME.generative.models]]` with `sha256` and `manifest`. Typical
  declarations: GFPGAN `--task face-restoration --input-range -1,1 --output-range -1,1
  --input-size 512`; LaMa `--task inpainting --mask hole=1 --input-size 512` (some exports
  write 0..255: `--output-range 0,255`). Add the entry to the lab's policy; cases opened with
  that policy may run the model (an existing case's policy never changes).
* **What a step records.** The file's SHA-256, the declared manifest (also the step's
  `manifest` parameter, used by a replay), the graph's inputs and outputs, the onnxruntime
  version and session settings; the file itself is copied into the case. The file is read
  once per process and the session built from those bytes, so a file changed on disk after
  the approval check cannot run.
* **Determinism.** One intra-op and one inter-op thread, sequential execution, deterministic
  compute, basic graph optimisation only: two runs give bit-identical outputs (tested). The
  ONNX and torch versions of the networks exported in the tests agree within 2e-5 of full
  scale (measured: 2.4e-7 or less). A full-size RRDBNet (Real-ESRGAN's shape: 23 blocks, 64
  features; random weights), 64 x 48 -> 256 x 192 on one CPU thread, measured once here on a
  shared, loaded 2-core x86_64 machine: onnxruntime 7.2 and 8.4 s, torch 7.5 and 8.1 s
  (ratio 0.96 to 1.05), largest difference 2.5e-6.
* **Cost.** Besides its own run, each step runs the model eight more times on perturbed
  inputs for its uncertainty map: nine runs of the model per image or frame.
"""


if __name__ == "__main__":
    main()
