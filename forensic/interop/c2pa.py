"""The one door to c2pa-python (C2PA Content Credentials), whose API changes often.

Everything the rest of forensic needs from it is here: signing a manifest definition into an
asset (embedded, or as a sidecar ``.c2pa`` manifest store that leaves the asset's bytes as
they are) and reading one back with c2pa-python's own validator. Both run with settings that
keep evidence in: no thumbnail of the asset is put in the manifest, remote manifests and OCSP
responses are never fetched, and no network host is allowed. Trust is given explicitly: the
lab's root certificate replaces the SDK's built-in trust anchors, so "Trusted" means "signed
by a certificate the lab's CA issued".

The manifest definition is the JSON of c2pa-rs's ``ManifestDefinition``; forensic builds it
(`forensic.export`) and this module only carries it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import c2pa  # type: ignore[import-untyped]

from forensic.errors import InputError

#: IPTC's digital source type vocabulary (https://cv.iptc.org/newscodes/digitalsourcetype/).
IPTC_SOURCE_TYPES = "http://cv.iptc.org/newscodes/digitalsourcetype/"
#: The media types forensic signs (lossless stills as the pipeline stores them, and MP4).
MEDIA_TYPES = {".png": "image/png", ".tif": "image/tiff", ".mp4": "video/mp4"}


def library_version() -> str:
    """c2pa-python's version and the c2pa-rs version under it."""
    return f"c2pa-python {c2pa.__version__} (c2pa-rs {c2pa.sdk_version()})"


def settings(trust_anchors_pem: str | None) -> dict[str, Any]:
    """c2pa-rs settings: no thumbnails, no network, trust only ``trust_anchors_pem`` (with
    None, no certificate is trusted: c2pa-rs ships no anchors of its own)."""
    return {
        "version": 1,
        "builder": {"thumbnail": {"enabled": False}},
        "verify": {
            "verify_after_sign": True,
            "verify_after_reading": True,
            "verify_trust": True,
            "remote_manifest_fetch": False,
            "ocsp_fetch": False,
        },
        "core": {"allowed_network_hosts": []},
        "trust": {"trust_anchors": trust_anchors_pem} if trust_anchors_pem else {},
    }


def sign(
    definition: Mapping[str, Any],
    source: Path,
    dest: Path,
    media_type: str,
    *,
    certificate_chain_pem: str,
    sign_es256: Callable[[bytes], bytes],
    trust_anchors_pem: str,
    sidecar: bool,
) -> bytes:
    """Sign ``definition`` over the asset ``source`` into the new file ``dest`` (the asset with
    the manifest embedded, or a copy of it with ``sidecar``) with an ECDSA P-256 key
    (``sign_es256`` returns a DER signature of its argument); returns the manifest store's
    bytes (a JUMBF ``.c2pa`` file). c2pa-rs validates the result after signing (with
    ``trust_anchors_pem``) and refuses what it would not accept."""
    try:
        context = c2pa.Context.from_dict(settings(trust_anchors_pem))
        signer = c2pa.Signer.from_callback(
            sign_es256, c2pa.C2paSigningAlg.ES256, certificate_chain_pem, None
        )
        builder = c2pa.Builder(json.dumps(dict(definition)), context=context)
        if sidecar:
            builder.set_no_embed()
        with source.open("rb") as src, dest.open("x+b") as dst:
            manifest = builder.sign(signer, media_type, src, dst)
    except c2pa.C2paError as exc:
        raise InputError(
            f"C2PA signing failed: {exc}",
            hint="the manifest, the asset type or the certificate was refused by c2pa-rs",
        ) from None
    return bytes(manifest)


@dataclass(frozen=True)
class Reading:
    """What c2pa-python's Reader says of an asset: the validation state (``Trusted``,
    ``Valid`` or ``Invalid``), the failure codes of the active manifest, and the manifest."""

    state: str
    failures: tuple[str, ...]
    manifest: dict[str, Any]


def read(
    asset: bytes | Path,
    media_type: str,
    *,
    trust_anchors_pem: str | None,
    sidecar: bytes | None = None,
) -> Reading:
    """Read and validate the manifest of ``asset`` (embedded, or the ``sidecar`` bytes)."""
    try:
        context = c2pa.Context.from_dict(settings(trust_anchors_pem))
        with (
            asset.open("rb") if isinstance(asset, Path) else io.BytesIO(asset) as stream,
            c2pa.Reader(media_type, stream, sidecar, context=context) as reader,
        ):
            state = str(reader.get_validation_state())
            results = reader.get_validation_results() or {}
            manifest = reader.get_active_manifest() or {}
    except c2pa.C2paError as exc:
        raise InputError(f"no readable C2PA manifest: {exc}") from None
    failures = tuple(
        str(item.get("code")) for item in (results.get("activeManifest") or {}).get("failure", [])
    )
    return Reading(state=state, failures=failures, manifest=dict(manifest))
