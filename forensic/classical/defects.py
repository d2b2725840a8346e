"""Defect detection on damaged photographs and film frames: an analysis step.

`detect_defects` changes no pixel (its effect is *analysis*: the provenance map is untouched).
It returns, in its details, one mask per defect kind and the combined mask after the
examiner's edits, each with its pixel count, share and SHA-256 and the mask itself (encoded,
`forensic.ops.defects.encode_mask`); a run stores each mask as a file in the case's
``derived/`` area and records its name and hashes (`forensic.pipeline.masks`). The examiner
edits a mask by running the step
again with regions added (``add``) or removed (``remove``): the edit is a recorded step like
any other. Filling what the mask covers is a generative step (``generative.fill_defects``),
never this one.
"""

from __future__ import annotations

from forensic.classical import references as ref
from forensic.ops.defects import DETECTION_PARAMS, analyse
from forensic.ops.framework import Reference, operation
from forensic.ops.pixels import Image

KOKARAM_1998 = Reference(
    "Kokaram, A. C. (1998). Motion Picture Restoration: Digital Algorithms for Artefact "
    "Suppression in Degraded Motion Picture Film and Video. Springer, London.",
    note="DOI not confirmed; identified by author, title and publisher",
)
DUDA_HART_1972 = Reference(
    "Duda, R. O. and Hart, P. E. (1972). Use of the Hough transformation to detect lines and "
    "curves in pictures. Communications of the ACM, 15(1), 11-15.",
    doi="10.1145/361237.361242",
)
MATAS_2000 = Reference(
    "Matas, J., Galambos, C. and Kittler, J. (2000). Robust detection of lines using the "
    "progressive probabilistic Hough transform. Computer Vision and Image Understanding, "
    "78(1), 119-137.",
    doi="10.1006/cviu.1999.0831",
)


@operation(
    name="detect_defects",
    version="1",
    category="analysis",
    swgit_class="basic",
    summary="Find dust, scratches, tears and stains; record their masks (no pixel changes).",
    description="""An analysis step: it measures the image and changes none of its pixels.
    Dust and spots are small compact marks that differ strongly from their neighbourhood
    (and from the texture around them); line scratches are thin straight marks found as
    straight segments among such pixels; tears and creases that expose the paper are long
    bands of flat, colourless near-white much brighter than the picture around them; stains
    are large areas whose colour (yellow-brown against the print's own tone) or, in a grey
    image, brightness departs from the picture's large-scale surroundings. One mask per
    kind and the combined mask are recorded with their SHA-256; the examiner corrects the
    combined mask by adding or removing rectangles and polygons, which is recorded with the
    step. The masks show where the picture is damaged; filling them is a separate,
    generative step whose pixels are inferred.""",
    references=(KOKARAM_1998, DUDA_HART_1972, MATAS_2000, ref.GONZALEZ_WOODS),
    effect="analysis",
    params=DETECTION_PARAMS,
    details_for=lambda image, p: analyse(image, p, "detect_defects")[1],
)
def detect_defects(
    image: Image,
    *,
    kinds: str = "dust,scratches,tears,stains",
    sensitivity: float = 1.0,
    max_spot_area: int = 150,
    min_length: int = 40,
    min_stain_area: int = 400,
    add: str | None = None,
    remove: str | None = None,
) -> Image:
    """Detect defects; return the image unchanged (the masks are in the step's details).

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    kinds : str
        Comma-separated kinds: dust, scratches, tears, stains.
    sensitivity : float
        Divides every contrast threshold (and multiplies the flatness limit of tears).
    max_spot_area : int
        Dust: components larger than this are not spots.
    min_length : int
        Scratches and tears: the shortest straight segment (scratches) or band (tears).
    min_stain_area : int
        Stains: smaller discoloured components are ignored.
    add, remove : str or None
        The examiner's edits: ``rect(x, y, width, height)`` and ``polygon(x1, y1, ...)``
        regions separated by ``;``, added to and then removed from the combined mask.

    Returns
    -------
    ndarray
        A copy of ``image`` (no pixel changes). ``Operation.run`` returns the masks in its
        details: ``masks`` (per kind), ``mask`` (combined, after the edits), ``measured``
        (each detector's thresholds) and ``edits``.

    Notes
    -----
    With ``L`` the luma on [0, 1] and ``r = L - median_k(L)``, the local activity ``a`` is
    the 21 x 21 mean of ``|r|``. Dust: ``|r_9| > 0.1 / s`` and ``|r_9| > 6 a / s``, components
    of 2 to ``max_spot_area`` px at most 4 times longer than thick, grown by 1 px.
    Scratches: ``|r_7| > 0.1 / s`` and ``> 3 a / s``, blobs removed by a 4 x 4 opening,
    segments of at least ``min_length`` px by the progressive probabilistic Hough transform
    (Matas et al. 2000; OpenCV), the candidates within 1 px of a segment, grown by 1 px; a
    line scratch is the classic film defect of Kokaram (1998), here in any direction.
    Tears: ``L > 0.85``, channel spread < 0.1, 5 x 5 standard deviation < 0.02 + 0.04 s,
    ``L - median_41(L) > 0.12 / s``, closed, components at least ``min_length`` long with
    mean width (area / length) at most 16 px, grown by 2 px. Stains: ``log R - log B``
    (grey: ``|L - median|``) smoothed by a Gaussian (sigma 2) exceeds its median over half
    the smaller side by 0.2 / s (grey: 0.06 / s), opened twice, components of at least
    ``min_stain_area`` px. Reliable on monochrome and toned prints; on a colour photograph a
    warm object of the scene can pass for a stain (tests/test_photo_film.py states the
    measured precision and recall of each kind).

    References
    ----------
    Kokaram (1998), Springer; Duda & Hart (1972),
    doi:10.1145/361237.361242; Matas, Galambos & Kittler (2000),
    doi:10.1006/cviu.1999.0831; Gonzalez & Woods (2018), morphology.
    """
    # The masks are computed by the operation's details hook (Operation.run records them);
    # the pixels pass through untouched.
    return image.copy()
