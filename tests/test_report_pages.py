"""The report's pages, piece by piece: placeholders refused, media facts as rows, the region
magnified, heat maps scaled, previews at their printed resolution."""

from __future__ import annotations

import io
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from forensic.errors import InputError
from forensic.report.front import fact_rows
from forensic.report.layout import (
    PREVIEW_DPI,
    TEXT_W,
    BoxedImage,
    EncodedImage,
    heat_map,
    heat_top,
    image_flowable,
    magnified,
)
from forensic.report.runs import changed_region
from forensic.report.templates import default_folder, load_templates
from tests.conftest import filled_templates


def test_the_shipped_templates_are_refused_until_every_placeholder_is_filled(
    tmp_path: Path,
) -> None:
    shipped = load_templates(default_folder())
    with pytest.raises(InputError, match=r"\[lab\] accreditation: \{\{") as caught:
        shipped.require_filled()
    assert "3 placeholder(s)" in str(caught.value)
    assert "Not accredited for this work" in str(caught.value)  # the hint says what to write
    filled = load_templates(filled_templates(tmp_path / "t"))
    filled.require_filled()
    assert filled.lab["accreditation"].startswith("Not accredited")
    assert filled.outputs_max_bytes == 20_000_000


def test_a_wrong_attachment_limit_is_refused(tmp_path: Path) -> None:
    folder = filled_templates(tmp_path / "t")
    lab = folder / "lab.toml"
    lab.write_text(lab.read_text().replace("outputs_max_mb = 20", "outputs_max_mb = -1"))
    with pytest.raises(InputError, match="outputs_max_mb: must be a number of MB"):
        load_templates(folder)
    lab.write_text(lab.read_text().replace("outputs_max_mb = -1", "outputs_max = 1"))
    with pytest.raises(InputError, match=r"unknown keys \['outputs_max'\]"):
        load_templates(folder)
    shutil.rmtree(folder)


def test_media_facts_become_readable_rows() -> None:
    facts = {
        "codec": "h264",
        "colour": {"matrix": "unspecified", "assumed": ["range: limited", "matrix: bt601"]},
        "sample_aspect_ratio": None,
        "bit_exact_decoding": True,
        "exif": {"Make": "X"},
    }
    assert fact_rows(facts) == [
        ("bit exact decoding", "yes"),
        ("codec", "h264"),
        ("colour: assumed", "range: limited; matrix: bt601"),
        ("colour: matrix", "unspecified"),
        ("sample aspect ratio", "not signalled"),
    ]


def test_the_magnified_region_is_where_the_output_changed() -> None:
    rng = np.random.default_rng(5)
    before = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    after = before.copy()
    after[150:170, 200:230] = 255 - after[150:170, 200:230]
    (x, y, w, h), mean = changed_region(before, after)
    assert (w, h) == (40, 40)  # a sixth of the shorter side
    assert x <= 200 <= 230 <= x + w
    assert y <= 150 <= 170 <= y + h
    assert mean > 10
    same = changed_region(before, before)
    assert same[1] == 0.0


def test_heat_maps_are_scaled_so_an_outlier_does_not_blacken_them() -> None:
    values = np.full((100, 100), 1000, np.uint16)
    values[0, 0] = 65535
    assert heat_top(values) == 1000
    heat, top, peak = heat_map(values)
    assert (top, peak) == (1000, 65535)
    assert heat[50, 50].tolist() == [255, 255, 255]  # the typical value is white, not black
    assert heat_map(np.zeros((4, 4), np.uint16))[1] == 1


def _embedded(flowable: object) -> PILImage.Image:
    """The preview as a PDF reader decodes the stream the report holds."""
    image = (flowable.image if isinstance(flowable, BoxedImage) else flowable).image
    assert isinstance(image, EncodedImage)
    if image.filter == "/DCTDecode":
        return PILImage.open(io.BytesIO(image.data))
    assert image.filter == "/FlateDecode"
    assert image.predictor
    # PNG "Sub" rows: undo the predictor as ISO 32000-1, 7.4.4.4 says, independently of
    # the encoder's numpy code.
    raw = zlib.decompress(image.data)
    stride = 1 + image.width * image.colours
    rows = [bytearray(raw[i : i + stride]) for i in range(0, len(raw), stride)]
    assert len(rows) == image.height
    out = bytearray()
    for row in rows:
        assert row[0] == 1
        samples = row[1:]
        for i in range(image.colours, len(samples)):
            samples[i] = (samples[i] + samples[i - image.colours]) % 256
        out += samples
    mode = "L" if image.colours == 1 else "RGB"
    return PILImage.frombytes(mode, (image.width, image.height), bytes(out))


def test_previews_are_jpeg_at_their_printed_resolution() -> None:
    frame = np.random.default_rng(1).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    flowable = image_flowable(frame, TEXT_W, 400, box=(10, 10, 50, 50))
    assert isinstance(flowable, BoxedImage)
    embedded = _embedded(flowable)
    assert embedded.format == "JPEG"
    dpi = embedded.width / (flowable.width / 72)
    assert PREVIEW_DPI / 2 <= dpi <= PREVIEW_DPI  # 1920 px over 178 mm: reduced by 2
    grey = np.repeat(frame[:, :, :1], 3, axis=2)
    assert _embedded(image_flowable(grey, 200, 200)).mode == "L"


def test_magnified_pixels_are_repeated_not_interpolated() -> None:
    image = np.zeros((50, 50, 3), np.uint8)
    image[10:12, 10:12] = 200
    flowable, mm_per_pixel = magnified(image, (8, 8, 8, 8), 240, 240)
    embedded = np.asarray(_embedded(flowable).convert("RGB"))
    assert flowable.image.filter == "/FlateDecode"  # lossless: no JPEG blur at the edges
    repeat = embedded.shape[0] // 8
    assert embedded.shape[:2] == (8 * repeat, 8 * repeat)
    assert set(np.unique(embedded).tolist()) == {0, 200}  # only the source values
    assert mm_per_pixel == pytest.approx(240 / 8 * 25.4 / 72)


def test_block_means_are_exact_and_class_blocks_keep_their_most_severe_class() -> None:
    from forensic.report.layout import reduce_classes, reduce_pixels

    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (31, 47, 3), dtype=np.uint8)
    for factor in (2, 3, 5):
        h, w = 31 // factor * factor, 47 // factor * factor
        blocks = (
            pixels[:h, :w].astype(np.int64).reshape(h // factor, factor, w // factor, factor, 3)
        )
        expected = (blocks.sum(axis=(1, 3)) + factor * factor // 2) // (factor * factor)
        assert np.array_equal(reduce_pixels(pixels, factor), expected)
    pmap = np.zeros((8, 8), np.uint8)
    pmap[5, 6] = 3  # one inferred pixel
    reduced = reduce_classes(pmap, 4)
    assert reduced.tolist() == [[0, 0], [0, 3]]


def test_the_provenance_overlay_blends_each_class_by_its_weight() -> None:
    from forensic import provenance
    from forensic.report.layout import CLASS_COLOURS, overlay

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    pmap = rng.integers(0, len(provenance.CLASSES), (20, 30), dtype=np.uint8)
    r, g, b = (rgb[:, :, i].astype(np.int64) for i in range(3))
    grey = (299 * r + 587 * g + 114 * b + 500) // 1000
    shown = overlay(rgb, pmap)
    for code, name in enumerate(provenance.CLASSES):
        spec = CLASS_COLOURS[name]
        where = pmap == code
        if spec is None:  # original pixels: plain grey
            assert np.array_equal(shown[where], np.repeat(grey[where][:, None], 3, axis=1))
            continue
        a = round(spec[1] * 256)
        expected = (grey[where][:, None] * (256 - a) + np.array(spec[0]) * a + 128) >> 8
        assert np.array_equal(shown[where], expected)
    assert np.array_equal(overlay(rgb[:, :, :1], pmap)[pmap == 0][:, 0], rgb[:, :, 0][pmap == 0])
