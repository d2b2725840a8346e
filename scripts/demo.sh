#!/usr/bin/env bash
# The whole workflow on bundled (generated) fixtures: keys, case, ingest, verify.
# Everything goes under build/demo, which is recreated on every run.
set -euo pipefail
out=build/demo
rm -rf "$out"
mkdir -p "$out"
export FORENSIC_KEY_DIR="$out/keys"
# A demo passphrase, deliberately not secret. Real examiners type theirs at the prompt.
export FORENSIC_PASSPHRASE="demo-passphrase-not-a-secret"

step() { printf '\n== %s\n$' "$1"; printf ' %q' "${@:2}"; printf '\n'; "${@:2}"; }

step "Generate the test media (deterministic, with ground truth)" \
  python -m fixtures.generate "$out/media"
step "Create the examiner's signing key" \
  forensic keys init --name "Demo Examiner"
step "Open a case with the default policy" \
  forensic case init "$out/case" --case-id DEMO-001 --title "Demo: CCTV still and clip"
step "Ingest a noisy still, a 16-bit image and a CCTV clip" \
  forensic ingest "$out/case" "$out/media/camera_noisy.png" "$out/media/astronaut16.png" "$out/media/cctv.mp4"
step "Ingesting the same bytes again is recognised, not duplicated" \
  forensic ingest "$out/case" "$out/media/camera_noisy.png"
step "What the case holds" \
  forensic case show "$out/case"
step "Verify signatures, hash chain, checkpoint, policy and evidence" \
  forensic verify "$out/case" --pixels --trust "$out/keys/examiner.pub.pem"
printf '\nDemo case: %s\n' "$out/case"
