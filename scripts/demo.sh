#!/usr/bin/env bash
# The whole workflow on bundled (generated) fixtures: keys, case, ingest, enhance, verify.
# Everything goes under build/demo, which is recreated on every run.
set -euo pipefail
out=build/demo
rm -rf "$out"
mkdir -p "$out"
export FORENSIC_KEY_DIR="$out/keys"
# A demo passphrase, deliberately not secret. Real examiners type theirs at the prompt.
export FORENSIC_PASSPHRASE="demo-passphrase-not-a-secret"

step() { printf '\n== %s\n$' "$1"; printf ' %q' "${@:2}"; printf '\n'; "${@:2}"; }

# The lab's report templates: a copy of reports/ with its placeholders filled in. forensic
# refuses to issue a report while one is left (shown below).
mkdir -p "$out/templates"
cp -r reports/. "$out/templates/"
sed -i \
  -e "s|{{the laboratory's name}}|Demo Forensic Laboratory|" \
  -e "s|{{the laboratory's address}}|Demonstration only: not a real laboratory|" \
  -e "s|{{the laboratory's accreditation[^}]*}}|Not accredited: a demonstration report made by make demo, not for use in proceedings.|" \
  "$out/templates/lab.toml"
export FORENSIC_REPORT_TEMPLATES="$out/templates"

step "Generate the test media (deterministic, with ground truth)" \
  python -m fixtures.generate "$out/media"
step "Create the examiner's signing key" \
  forensic keys init --name "Demo Examiner"
step "Open a case with the default policy" \
  forensic case init "$out/case" --case-id DEMO-001 --title "Demo: CCTV still and clip"
step "Ingest a noisy still, a motion-blurred still, a 16-bit image and a CCTV clip" \
  forensic ingest "$out/case" "$out/media/camera_noisy.png" "$out/media/camera_blur_motion.png" \
  "$out/media/astronaut16.png" "$out/media/cctv.mp4"
step "Ingesting the same bytes again is recognised, not duplicated" \
  forensic ingest "$out/case" "$out/media/camera_noisy.png"
step "The recipes shipped with forensic" \
  forensic recipes
step "Enhance the noisy still (E1) with the dark-noisy recipe" \
  forensic enhance "$out/case" E1 --recipe dark-noisy
step "Deblur the motion-blurred still (E2); the blur is estimated from the image" \
  forensic enhance "$out/case" E2 --recipe motion-blur
cat > "$out/clip-recipe.toml" <<'TOML'
[recipe]
name = "clip-frames"
description = "Three frames of the CCTV clip: denoise, then lift the mid-tones of the middle one."

[[steps]]
op = "denoise_nl_means"
frames = [10, 12]

[[steps]]
op = "levels"
gamma = 1.3
frames = [11, 11]
TOML
step "Enhance frames 10-12 of the clip (E4) with a recipe written here" \
  forensic enhance "$out/case" E4 --recipe "$out/clip-recipe.toml"
step "Average 16 registered frames of the clip: noise falls, detail stays (shipped recipe)" \
  forensic enhance "$out/case" E4 --recipe parked-vehicle
step "Multi-frame super-resolution x2 of a region from 16 jittered frames (classical)" \
  forensic enhance "$out/case" E4 --recipe multi-frame-sr
step "Export the averaged frame losslessly (FFV1): re-ingesting it gives the journaled frame hashes" \
  forensic export "$out/case" R4 --format ffv1 --out "$out/R4-average.mkv"
step "Export frames 10-12 as an H.264 presentation copy with frame number and timecode (lossy)" \
  forensic export "$out/case" R3 --format h264 --burn-in --out "$out/R3-presentation.mp4"
step "What the case holds" \
  forensic case show "$out/case"
step "Verify everything, decode the evidence, and replay every run from the originals" \
  forensic verify "$out/case" --pixels --replay --trust "$out/keys/examiner.pub.pem"
step "A third case, filled by a batch over Dask worker processes" \
  forensic case init "$out/batch" --case-id DEMO-003 --title "Demo: a batch of exhibits"
cat > "$out/jobs.csv" <<CSV
case,exhibit,recipe,frames
batch,media/camera_noisy.png,dark-noisy,
batch,media/camera_blur_motion.png,motion-blur,
batch,media/cctv.mp4,dark-noisy,0:15
CSV
step "Two workers compute; this process signs, in manifest order (a rerun skips all three)" \
  forensic batch "$out/jobs.csv" --workers 2
step "A second case, for investigative leads: the generative lane is allowed there" \
  forensic case init "$out/leads" --case-id DEMO-002 --title "Demo: investigative leads" --profile investigative
step "Ingest a still" \
  forensic ingest "$out/leads" "$out/media/astronaut_clean.png"
cat > "$out/leads-recipe.toml" <<'TOML'
[recipe]
name = "lead-x2"
description = "Learned super-resolution x2 of a still: investigative lead, every pixel inferred."

[[steps]]
op = "generative.super_resolution"
scale = 2
TOML
step "Learned super-resolution: output, maps and a labelled copy, all marked inferred" \
  forensic enhance "$out/leads" E1 --recipe "$out/leads-recipe.toml"
step "The leads case: the step awaits a second examiner's co-signature" \
  forensic case show "$out/leads"
step "Verify the leads case and replay its generative step" \
  forensic verify "$out/leads" --replay --trust "$out/keys/examiner.pub.pem"

# The signed report. PDF verifiers do not accept Ed25519, so the examiner gets an ECDSA
# report certificate from a local lab CA, bound to the journal key in each case.
step "Create the lab CA and the examiner's report-signing certificate" \
  forensic pki init --lab "Demo Forensic Laboratory"
step "Bind the report certificate to the journal key in the evidence case" \
  forensic pki bind "$out/case"
step "Export the enhanced still (R1) with C2PA Content Credentials, signed with that certificate" \
  forensic export "$out/case" R1 --c2pa --out "$out/R1-c2pa"
printf '\n== %s\n' "The shipped templates still hold placeholders: no report is issued with them"
if forensic report "$out/case" --out "$out/refused.pdf" --templates reports; then
  echo "a report was issued with unfilled placeholders" >&2; exit 1
fi
step "Issue the signed chain-of-custody report of the evidence case (the lab's templates)" \
  forensic report "$out/case" --out "$out/report-DEMO-001.pdf"
step "Verify the report with forensic: signatures, attached journal, case, rebuild" \
  forensic verify "$out/report-DEMO-001.pdf" --case "$out/case"
if command -v pdfsig >/dev/null 2>&1; then
  step "Verify the PDF signature with poppler, a tool we did not write" \
    pdfsig "$out/report-DEMO-001.pdf"
fi

if command -v pyhanko >/dev/null 2>&1 && command -v pdfdetach >/dev/null 2>&1; then
  mkdir -p "$out/attachments"
  (cd "$out/attachments" && pdfdetach -saveall ../report-DEMO-001.pdf)
  step "Verify it with pyHanko, trusting the lab CA certificate attached to the report" \
    pyhanko sign validate --trust "$(ls "$out"/attachments/lab-ca-*.cert.pem)" "$out/report-DEMO-001.pdf"
fi

second="$out/keys-second"
step "A second examiner: their own key and report certificate" \
  forensic keys init --name "Second Examiner" --key-dir "$second"
forensic pki init --lab "Demo Forensic Laboratory" --key-dir "$second" >/dev/null
forensic keys export-public --key-dir "$second" > "$out/second.pub.pem"
step "Enrol the second examiner in the leads case" \
  forensic case add-examiner "$out/leads" --public-key "$out/second.pub.pem" --name "Second Examiner"
step "The second examiner co-signs the generative step (the investigative profile requires it)" \
  forensic cosign "$out/leads" R1.1 --key-dir "$second"
step "Bind both report certificates in the leads case" \
  forensic pki bind "$out/leads"
forensic pki bind "$out/leads" --key-dir "$second" >/dev/null
step "Issue the leads report: inferred pages carry the label on every page" \
  forensic report "$out/leads" --out "$out/report-DEMO-002.pdf"
step "The second examiner adds an approval signature" \
  forensic report sign "$out/leads" "$out/report-DEMO-002.pdf" --out "$out/report-DEMO-002-approved.pdf" --key-dir "$second"
step "Verify the approved report against its case" \
  forensic verify "$out/report-DEMO-002-approved.pdf" --case "$out/leads"
step "The learned super-resolution with C2PA Content Credentials: trainedAlgorithmicMedia, every pixel" \
  forensic export "$out/leads" R1 --c2pa --out "$out/leads-R1-c2pa"
step "Verify both cases once more (their journals now record the reports)" \
  forensic verify "$out/case" --trust "$out/keys/examiner.pub.pem"
forensic verify "$out/leads" --trust "$out/keys/examiner.pub.pem" >/dev/null
step "Bundle the evidence case for hand-over (BagIt: case, outputs, maps, report, certificates)" \
  forensic bundle "$out/case" "$out/DEMO-001-bundle.tar"
step "Verify the bundle alone: its manifests, then the case and the report inside, offline" \
  forensic verify "$out/DEMO-001-bundle.tar" --trust "$out/keys/examiner.pub.pem"

printf '\nDemo cases: %s (evidence) and %s (investigative)\n' "$out/case" "$out/leads"
printf 'Signed reports: %s\n                %s\n' "$out/report-DEMO-001.pdf" "$out/report-DEMO-002-approved.pdf"
printf 'Evidence bundle: %s\n' "$out/DEMO-001-bundle.tar"
printf '\nOpen the evidence case in the workbench (a local web page; Ctrl+C stops it):\n'
printf '  forensic workbench %s\n' "$out/case"
printf '  forensic workbench %s --read-only   # a reviewer: look and verify, never write\n' "$out/leads"
