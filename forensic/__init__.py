"""forensic: enhance images and CCTV video as evidence, and prove what was done."""

__version__ = "0.1.0"
