"""The scientific references the classical operations cite (printed in reports).

Only DOIs we could check against independent reference lists are given; where a work has no
DOI (books, standards), or we could not confirm one, the citation is complete enough to find
it (volume, issue, pages, ISBN or the standard's identifier).
"""

from __future__ import annotations

from forensic.ops.framework import Reference

GONZALEZ_WOODS = Reference(
    "Gonzalez, R. C. and Woods, R. E. (2018). Digital Image Processing, 4th ed. Pearson.",
    note="ISBN 978-0-13-335672-4; chapter 3 (intensity transformations and spatial filtering)",
)
POYNTON = Reference(
    "Poynton, C. (2012). Digital Video and HD: Algorithms and Interfaces, 2nd ed. Morgan Kaufmann.",
    note="ISBN 978-0-12-391926-7",
)
HUMMEL_1977 = Reference(
    "Hummel, R. (1977). Image enhancement by histogram transformation. Computer Graphics "
    "and Image Processing, 6(2), 184-195.",
    doi="10.1016/S0146-664X(77)80011-7",
)
PIZER_1987 = Reference(
    "Pizer, S. M. et al. (1987). Adaptive histogram equalization and its variations. "
    "Computer Vision, Graphics, and Image Processing, 39(3), 355-368.",
    doi="10.1016/S0734-189X(87)80186-X",
)
ZUIDERVELD_1994 = Reference(
    "Zuiderveld, K. (1994). Contrast limited adaptive histogram equalization. In Graphics "
    "Gems IV, 474-485. Academic Press.",
    doi="10.1016/B978-0-12-336156-1.50061-6",
)
BUCHSBAUM_1980 = Reference(
    "Buchsbaum, G. (1980). A spatial processor model for object colour perception. Journal "
    "of the Franklin Institute, 310(1), 1-26.",
    doi="10.1016/0016-0032(80)90058-7",
)
LAND_MCCANN_1971 = Reference(
    "Land, E. H. and McCann, J. J. (1971). Lightness and Retinex theory. Journal of the "
    "Optical Society of America, 61(1), 1-11.",
    doi="10.1364/JOSA.61.000001",
)
BT601 = Reference(
    "ITU-R Recommendation BT.601-7 (2011). Studio encoding parameters of digital television "
    "for standard 4:3 and wide-screen 16:9 aspect ratios.",
    note="standard; no DOI",
)
BT709 = Reference(
    "ITU-R Recommendation BT.709-6 (2015). Parameter values for the HDTV standards for "
    "production and international programme exchange.",
    note="standard; no DOI",
)
MARR_HILDRETH_1980 = Reference(
    "Marr, D. and Hildreth, E. (1980). Theory of edge detection. Proceedings of the Royal "
    "Society of London B, 207(1167), 187-217.",
    doi="10.1098/rspb.1980.0020",
)
HUANG_1979 = Reference(
    "Huang, T. S., Yang, G. J. and Tang, G. Y. (1979). A fast two-dimensional median "
    "filtering algorithm. IEEE Transactions on Acoustics, Speech, and Signal Processing, "
    "27(1), 13-18.",
    doi="10.1109/TASSP.1979.1163188",
)
TOMASI_MANDUCHI_1998 = Reference(
    "Tomasi, C. and Manduchi, R. (1998). Bilateral filtering for gray and color images. "
    "Sixth International Conference on Computer Vision (ICCV), 839-846.",
    doi="10.1109/ICCV.1998.710815",
)
BUADES_2005 = Reference(
    "Buades, A., Coll, B. and Morel, J.-M. (2005). A non-local algorithm for image "
    "denoising. IEEE CVPR 2005, vol. 2, 60-65.",
    doi="10.1109/CVPR.2005.38",
)
BUADES_2011 = Reference(
    "Buades, A., Coll, B. and Morel, J.-M. (2011). Non-Local Means Denoising. Image "
    "Processing On Line, 1, 208-212.",
    doi="10.5201/ipol.2011.bcm_nlm",
)
DARBON_2008 = Reference(
    "Darbon, J., Cunha, A., Chan, T. F., Osher, S. and Jensen, G. J. (2008). Fast nonlocal "
    "filtering applied to electron cryomicroscopy. IEEE ISBI 2008, 1331-1334.",
    doi="10.1109/ISBI.2008.4541250",
)
CHANG_2000 = Reference(
    "Chang, S. G., Yu, B. and Vetterli, M. (2000). Adaptive wavelet thresholding for image "
    "denoising and compression. IEEE Transactions on Image Processing, 9(9), 1532-1546.",
    doi="10.1109/83.862633",
)
DONOHO_JOHNSTONE_1994 = Reference(
    "Donoho, D. L. and Johnstone, I. M. (1994). Ideal spatial adaptation by wavelet "
    "shrinkage. Biometrika, 81(3), 425-455.",
    doi="10.1093/biomet/81.3.425",
)
CHAMBOLLE_2004 = Reference(
    "Chambolle, A. (2004). An algorithm for total variation minimization and applications. "
    "Journal of Mathematical Imaging and Vision, 20, 89-97.",
    doi="10.1023/B:JMIV.0000011325.36760.1e",
)
ROF_1992 = Reference(
    "Rudin, L. I., Osher, S. and Fatemi, E. (1992). Nonlinear total variation based noise "
    "removal algorithms. Physica D, 60(1-4), 259-268.",
    doi="10.1016/0167-2789(92)90242-F",
)
HUNT_1973 = Reference(
    "Hunt, B. R. (1973). The application of constrained least squares estimation to image "
    "restoration by digital computer. IEEE Transactions on Computers, C-22(9), 805-812.",
    note="DOI not confirmed; identified by journal, volume and pages",
)
RICHARDSON_1972 = Reference(
    "Richardson, W. H. (1972). Bayesian-based iterative method of image restoration. "
    "Journal of the Optical Society of America, 62(1), 55-59.",
    doi="10.1364/JOSA.62.000055",
)
LUCY_1974 = Reference(
    "Lucy, L. B. (1974). An iterative technique for the rectification of observed "
    "distributions. The Astronomical Journal, 79, 745-754.",
    doi="10.1086/111605",
)
ORIEUX_2010 = Reference(
    "Orieux, F., Giovannelli, J.-F. and Rodet, T. (2010). Bayesian estimation of "
    "regularization and point spread function parameters for Wiener-Hunt deconvolution. "
    "Journal of the Optical Society of America A, 27(7), 1593-1607.",
    note="preprint arXiv:1004.5538",
)
LIU_JIA_2008 = Reference(
    "Liu, R. and Jia, J. (2008). Reducing boundary artifacts in image deconvolution. "
    "15th IEEE International Conference on Image Processing (ICIP 2008).",
    doi="10.1109/ICIP.2008.4711802",
)
MOISAN_2011 = Reference(
    "Moisan, L. (2011). Periodic plus smooth image decomposition. Journal of Mathematical "
    "Imaging and Vision, 39(2), 161-179.",
    doi="10.1007/s10851-010-0227-1",
)
CANNON_1976 = Reference(
    "Cannon, M. (1976). Blind deconvolution of spatially invariant image blurs with phase. "
    "IEEE Transactions on Acoustics, Speech, and Signal Processing, 24(1), 58-63.",
    note="DOI not confirmed; identified by journal, volume and pages",
)
SCHREIBER_1970 = Reference(
    "Schreiber, W. F. (1970). Wirephoto quality improvement by unsharp masking. Pattern "
    "Recognition, 2(2), 117-120.",
    note="DOI not confirmed; identified by journal, volume and pages",
)
KEYS_1981 = Reference(
    "Keys, R. (1981). Cubic convolution interpolation for digital image processing. IEEE "
    "Transactions on Acoustics, Speech, and Signal Processing, 29(6), 1153-1160.",
    doi="10.1109/TASSP.1981.1163711",
)
DUCHON_1979 = Reference(
    "Duchon, C. E. (1979). Lanczos filtering in one and two dimensions. Journal of Applied "
    "Meteorology, 18(8), 1016-1022.",
    doi="10.1175/1520-0450(1979)018<1016:LFIOAT>2.0.CO;2",
)
HARTLEY_ZISSERMAN_2004 = Reference(
    "Hartley, R. and Zisserman, A. (2004). Multiple View Geometry in Computer Vision, "
    "2nd ed. Cambridge University Press.",
    doi="10.1017/CBO9780511811685",
)
BROWN_1966 = Reference(
    "Brown, D. C. (1966). Decentering distortion of lenses. Photogrammetric Engineering, "
    "32(3), 444-462.",
    note="no DOI",
)
ZHANG_2000 = Reference(
    "Zhang, Z. (2000). A flexible new technique for camera calibration. IEEE Transactions "
    "on Pattern Analysis and Machine Intelligence, 22(11), 1330-1334.",
    doi="10.1109/34.888718",
)
DE_HAAN_1998 = Reference(
    "de Haan, G. and Bellers, E. B. (1998). Deinterlacing - an overview. Proceedings of the "
    "IEEE, 86(9), 1839-1857.",
    note="DOI not confirmed; identified by journal, volume and pages",
)
HILL_2016 = Reference(
    "Hill, S., Zhou, Z., Saul, L. and Shacham, H. (2016). On the (in)effectiveness of "
    "mosaicing and blurring as tools for document redaction. Proceedings on Privacy "
    "Enhancing Technologies, 2016(4), 403-417.",
    doi="10.1515/popets-2016-0047",
)
H264_VUI = Reference(
    "ITU-T Recommendation H.264 (2021). Advanced video coding for generic audiovisual "
    "services. Annex E (video usability information), Table E-1: sample aspect ratios.",
    note="standard; no DOI. 12:11 for 625-line 4:3 (704 x 576), 10:11 for 525-line 4:3",
)
EXIF_232 = Reference(
    "CIPA DC-008-2019 / JEITA CP-3451E (2019). Exchangeable image file format for digital still "
    "cameras: Exif Version 2.32. Tag 0x0112 Orientation.",
    note="standard; no DOI. Values 1-8: the stored picture's row 0 and column 0 as displayed",
)
ISO_14496_12 = Reference(
    "ISO/IEC (2022). ISO/IEC 14496-12: Information technology - Coding of audio-visual "
    "objects - Part 12: ISO base media file format. Track header box, transformation matrix.",
    note="standard; no DOI. The display matrix FFmpeg exports as side data (and the legacy "
    "'rotate' tag)",
)
OPENCV = Reference(
    "Bradski, G. (2000). The OpenCV Library. Dr. Dobb's Journal of Software Tools.",
    note="implementation used for the resampling; https://opencv.org",
)
KUGLIN_HINES_1975 = Reference(
    "Kuglin, C. D. and Hines, D. C. (1975). The phase correlation image alignment method. "
    "Proceedings of the IEEE International Conference on Cybernetics and Society, 163-165.",
    note="conference proceedings; no DOI",
)
GUIZAR_SICAIROS_2008 = Reference(
    "Guizar-Sicairos, M., Thurman, S. T. and Fienup, J. R. (2008). Efficient subpixel image "
    "registration algorithms. Optics Letters, 33(2), 156-158.",
    doi="10.1364/OL.33.000156",
)
EVANGELIDIS_2008 = Reference(
    "Evangelidis, G. D. and Psarakis, E. Z. (2008). Parametric image alignment using enhanced "
    "correlation coefficient maximization. IEEE Transactions on Pattern Analysis and Machine "
    "Intelligence, 30(10), 1858-1865.",
    doi="10.1109/TPAMI.2008.113",
)
FARSIU_2004 = Reference(
    "Farsiu, S., Robinson, M. D., Elad, M. and Milanfar, P. (2004). Fast and robust multiframe "
    "super resolution. IEEE Transactions on Image Processing, 13(10), 1327-1344.",
    doi="10.1109/TIP.2004.834669",
)
MATSUSHITA_2006 = Reference(
    "Matsushita, Y., Ofek, E., Ge, W., Tang, X. and Shum, H.-Y. (2006). Full-frame video "
    "stabilization with motion inpainting. IEEE Transactions on Pattern Analysis and Machine "
    "Intelligence, 28(7), 1150-1163.",
    doi="10.1109/TPAMI.2006.141",
    note="cited for the smoothing of the estimated camera path; its motion inpainting is not used",
)

#: Cited by every deconvolution operation for ``psf="motion(auto)"``.
MOTION_ESTIMATION = (CANNON_1976, MOISAN_2011)
HESTENES_STIEFEL_1952 = Reference(
    "Hestenes, M. R. and Stiefel, E. (1952). Methods of conjugate gradients for solving linear "
    "systems. Journal of Research of the National Bureau of Standards, 49(6), 409-436.",
    doi="10.6028/jres.049.044",
)
DABOV_2007 = Reference(
    "Dabov, K., Foi, A., Katkovnik, V. and Egiazarian, K. (2007). Image denoising by sparse 3-D "
    "transform-domain collaborative filtering. IEEE Transactions on Image Processing, 16(8), "
    "2080-2095.",
    doi="10.1109/TIP.2007.901238",
)
WELCH_1967 = Reference(
    "Welch, P. D. (1967). The use of fast Fourier transform for the estimation of power "
    "spectra: a method based on time averaging over short, modified periodograms. IEEE "
    "Transactions on Audio and Electroacoustics, 15(2), 70-73.",
    doi="10.1109/TAU.1967.1161901",
)
FIELD_1987 = Reference(
    "Field, D. J. (1987). Relations between the statistics of natural images and the response "
    "properties of cortical cells. Journal of the Optical Society of America A, 4(12), "
    "2379-2394.",
    doi="10.1364/JOSAA.4.002379",
)
LEBRUN_2012 = Reference(
    "Lebrun, M. (2012). An analysis and implementation of the BM3D image denoising method. "
    "Image Processing On Line, 2, 175-213.",
    doi="10.5201/ipol.2012.l-bm3d",
)
DABOV_2007_COLOUR = Reference(
    "Dabov, K., Foi, A., Katkovnik, V. and Egiazarian, K. (2007). Color image denoising via "
    "sparse 3D collaborative filtering with grouping constraint in luminance-chrominance space. "
    "IEEE International Conference on Image Processing, I-313-I-316.",
    doi="10.1109/ICIP.2007.4378954",
)
