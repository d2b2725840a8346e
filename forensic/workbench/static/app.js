// forensic workbench: the page. Plain ES module, no build step, no third-party code.
// Every image is drawn with nearest-neighbour scaling (imageSmoothingEnabled = false), so a
// pixel on the screen is always one pixel of the evidence, never an interpolated value.

const TOKEN = document.querySelector('meta[name="forensic-token"]').content;
const $ = (sel) => document.querySelector(sel);
const $$ = (sel) => Array.from(document.querySelectorAll(sel));
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
};

// Provenance classes (forensic.provenance): colour for the overlay and the legend.
const CLASSES = [
  ['original', [0, 0, 0, 0]],
  ['transformed', [90, 169, 255, 90]],
  ['resampled', [255, 200, 40, 110]],
  ['inferred', [255, 40, 200, 170]],
  ['redacted', [40, 40, 40, 230]],
];

const state = {
  overview: null,
  operations: {},
  tool: 'pan',
  picks: { rect: null, quad: [], points: [] },
  steps: [],
  previewImage: null,
  verifying: false,
};

// -- talking to the server ----------------------------------------------------------------------

async function api(path, { method = 'GET', body = null, raw = null } = {}) {
  const headers = {};
  if (method !== 'GET') headers['X-Forensic-Token'] = TOKEN;
  let payload = raw;
  if (body !== null) { headers['Content-Type'] = 'application/json'; payload = JSON.stringify(body); }
  const response = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  const type = response.headers.get('content-type') || '';
  if (response.ok && (type.startsWith('image/') || type.startsWith('application/x-forensic-pixels'))) {
    const info = JSON.parse(response.headers.get('x-forensic-info') || '{}');
    return { buffer: await response.arrayBuffer(), info };
  }
  const data = type.includes('json') ? await response.json() : { error: await response.text() };
  if (!response.ok) {
    const error = new Error(data.error || (data.problems || []).join('\n') || `HTTP ${response.status}`);
    error.data = data;
    throw error;
  }
  return data;
}

function toast(message, kind = 'error') {
  const box = $('#toast');
  box.textContent = message;
  box.className = `toast ${kind === 'info' ? 'info' : ''}`;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => box.classList.add('hidden'), kind === 'info' ? 3000 : 9000);
}

// Images come as raw 8-bit pixels (no encoding, so nothing is lost or smoothed on the way):
// the page keeps them as ImageData (values under the cursor, histogram) and an ImageBitmap.
async function loadBitmap(path, opts = {}) {
  const raw = opts.method === 'POST';
  const url = raw ? path : `${path}${path.includes('?') ? '&' : '?'}raw=1`;
  const body = raw ? { ...opts.body, raw: true } : null;
  const { buffer, info } = await api(url, raw ? { ...opts, body } : opts);
  const { width, height, channels } = info.raw;
  const src = new Uint8Array(buffer), data = new ImageData(width, height), out = data.data;
  for (let i = 0, j = 0; i < width * height; i++, j += channels) {
    const k = i * 4;
    if (channels === 1) { out[k] = out[k + 1] = out[k + 2] = src[j]; }
    else { out[k] = src[j]; out[k + 1] = src[j + 1]; out[k + 2] = src[j + 2]; }
    out[k + 3] = 255;
  }
  const bitmap = await createImageBitmap(data);
  return { bitmap, data, info, width, height };
}

// -- a zoomable, pannable pixel canvas ----------------------------------------------------------

class PixelView {
  constructor(canvas, { onCursor = null, onChange = null } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.image = null;      // {bitmap, data, width, height}
    this.scale = 1; this.ox = 0; this.oy = 0;
    this.onCursor = onCursor; this.onChange = onChange;
    this.draw = this.draw.bind(this);
    this.overlays = [];     // functions (ctx, view) drawn after the image
    this.peers = [];        // views sharing zoom and pan
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    canvas.addEventListener('wheel', (e) => {
      e.preventDefault();
      const factor = e.deltaY < 0 ? 1.25 : 0.8;
      this.zoomAt(this.scale * factor, e.offsetX, e.offsetY);
    }, { passive: false });
  }
  resize() {
    const r = this.canvas.parentElement.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.round(r.width * dpr));
    this.canvas.height = Math.max(1, Math.round(r.height * dpr));
    // A fitted image stays fitted when the page's layout changes; a zoomed one stays put.
    if (this.image && (!this.placed || this.fitted)) this.fit();
    this.draw();
  }
  setImage(image, { keep = false } = {}) {
    const same = this.image && image && this.image.width === image.width && this.image.height === image.height;
    this.image = image;
    if (!(keep && same)) { this.placed = false; this.fit(); }
    this.draw();
  }
  cssSize() { const r = this.canvas.getBoundingClientRect(); return [r.width, r.height]; }
  fit() {
    if (!this.image) return;
    const [w, h] = this.cssSize();
    if (w < 2 || h < 2) return;
    const s = Math.min(w / this.image.width, h / this.image.height);
    this.scale = s; this.ox = (w - this.image.width * s) / 2; this.oy = (h - this.image.height * s) / 2;
    this.placed = true; this.fitted = true; this.sync(); this.draw();
  }
  zoomAt(scale, cx, cy) {
    scale = Math.min(128, Math.max(0.02, scale));
    const px = (cx - this.ox) / this.scale, py = (cy - this.oy) / this.scale;
    this.scale = scale; this.ox = cx - px * scale; this.oy = cy - py * scale;
    this.placed = true; this.fitted = false; this.sync(); this.draw();
  }
  zoomTo(scale) { const [w, h] = this.cssSize(); this.zoomAt(scale, w / 2, h / 2); }
  panBy(dx, dy) { this.ox += dx; this.oy += dy; this.fitted = false; this.sync(); this.draw(); }
  sync() {
    for (const p of this.peers) { p.scale = this.scale; p.ox = this.ox; p.oy = this.oy; p.placed = true; p.fitted = this.fitted; p.draw(); }
    if (this.onChange) this.onChange();
  }
  // Screen (CSS px) <-> source pixel coordinates. Pixel (x, y) covers [x - 0.5, x + 0.5]:
  // the pixel-centre convention of forensic's geometry operations.
  toSource(sx, sy) { return [(sx - this.ox) / this.scale - 0.5, (sy - this.oy) / this.scale - 0.5]; }
  toScreen(x, y) { return [this.ox + (x + 0.5) * this.scale, this.oy + (y + 0.5) * this.scale]; }
  pixelAt(sx, sy) { return [Math.floor((sx - this.ox) / this.scale), Math.floor((sy - this.oy) / this.scale)]; }
  draw() {
    const ctx = this.ctx, dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.imageSmoothingEnabled = false;
    if (!this.image) return;
    if (this.renderImage) this.renderImage(ctx, this);
    else ctx.drawImage(this.image.bitmap, this.ox, this.oy, this.image.width * this.scale, this.image.height * this.scale);
    if (this.scale >= 8) this.drawGrid(ctx);
    for (const overlay of this.overlays) overlay(ctx, this);
  }
  drawGrid(ctx) {
    const [w, h] = this.cssSize();
    const x0 = Math.max(0, Math.floor(-this.ox / this.scale)), y0 = Math.max(0, Math.floor(-this.oy / this.scale));
    const x1 = Math.min(this.image.width, Math.ceil((w - this.ox) / this.scale));
    const y1 = Math.min(this.image.height, Math.ceil((h - this.oy) / this.scale));
    ctx.beginPath();
    for (let x = x0; x <= x1; x++) { const sx = Math.round(this.ox + x * this.scale) + 0.5; ctx.moveTo(sx, this.oy + y0 * this.scale); ctx.lineTo(sx, this.oy + y1 * this.scale); }
    for (let y = y0; y <= y1; y++) { const sy = Math.round(this.oy + y * this.scale) + 0.5; ctx.moveTo(this.ox + x0 * this.scale, sy); ctx.lineTo(this.ox + x1 * this.scale, sy); }
    ctx.strokeStyle = 'rgba(128,128,128,0.45)'; ctx.lineWidth = 1; ctx.stroke();
  }
}

function valueAt(image, x, y) {
  if (!image || x < 0 || y < 0 || x >= image.width || y >= image.height) return null;
  const i = (y * image.width + x) * 4, d = image.data.data;
  return [d[i], d[i + 1], d[i + 2]];
}

function dragPan(view, isPanning) {
  let last = null;
  view.canvas.addEventListener('pointerdown', (e) => { if (isPanning(e)) { last = [e.offsetX, e.offsetY]; view.canvas.setPointerCapture(e.pointerId); } });
  view.canvas.addEventListener('pointermove', (e) => { if (last) { view.panBy(e.offsetX - last[0], e.offsetY - last[1]); last = [e.offsetX, e.offsetY]; } });
  view.canvas.addEventListener('pointerup', () => { last = null; });
}

// -- tabs and header ----------------------------------------------------------------------------

function showTab(name) {
  $$('#tabs button').forEach((b) => b.classList.toggle('active', b.dataset.tab === name));
  $$('.tab').forEach((t) => t.classList.toggle('active', t.id === `tab-${name}`));
  if (name === 'record') loadJournal();
  if (name === 'compare') compare.render();
  for (const v of [viewer.view, compare.a, compare.b]) v.resize();
}

async function loadOverview() {
  const o = state.overview = await api('/api/case');
  $('#case-title').textContent = `case ${o.case_id} — ${o.title}`;
  const mode = $('#mode-badge');
  mode.textContent = o.read_only ? 'read-only' : 'read-write';
  mode.classList.toggle('read-only', o.read_only);
  $('#signer-badge').textContent = o.signer ? `signing as ${o.signer.name}` : 'no key unlocked';
  for (const b of ['#recipe-run', '#report-issue']) $(b).disabled = o.read_only || !o.signer;
  $('#report-issue').disabled = !o.reports_enabled;
  $('#report-note').textContent = o.reports_enabled ? '' : (o.report_note || 'reports cannot be issued here');
  const facts = $('#case-facts'); facts.replaceChildren();
  const add = (k, v) => facts.append(el('dt', { text: k }), el('dd', { text: v }));
  add('case', o.case_id); add('title', o.title); add('journal entries', String(o.entries));
  add('policy', `${o.policy.name || ''} (profile ${o.policy.profile || '?'})`);
  for (const [fp, name] of Object.entries(o.examiners)) add('examiner', `${name} — ${fp.slice(0, 16)}…`);
  renderExhibits(o); renderRuns(o); renderReports(o); fillSources(o); renderCosign(o);
}

function renderExhibits(o) {
  const box = $('#exhibits'); box.replaceChildren();
  for (const ex of o.exhibits) {
    const f = ex.facts;
    box.append(el('div', { class: 'card' },
      el('img', { src: `/api/thumb/${ex.id}`, alt: `${ex.id} thumbnail` }),
      el('div', { class: 'meta' },
        el('div', {}, el('b', { text: `${ex.id} ` }), ex.name),
        el('div', { text: `${ex.media}, ${f.width}×${f.height}${ex.frames ? `, ${ex.frames} frames` : ''}${f.codec ? `, ${f.codec}` : ''}${f.frame_rate ? ` @ ${f.frame_rate}` : ''}` }),
        el('div', { class: 'hash', text: `SHA-256 ${ex.sha256}` }),
        ex.warnings.length ? el('div', { class: 'muted', text: `${ex.warnings.length} warning(s): ${ex.warnings[0]}` }) : null,
        el('button', { onclick: () => { selectSource(ex.id); showTab('examine'); } }, 'Examine'))));
  }
  if (!o.exhibits.length) box.append(el('div', { class: 'muted', text: 'no exhibit yet (forensic ingest CASE FILE)' }));
}

function renderRuns(o) {
  const body = $('#runs tbody'); body.replaceChildren();
  for (const r of o.runs) {
    const counts = Object.entries(r.provenance).filter(([, n]) => n).map(([k, n]) => `${k} ${n}`).join(', ');
    body.append(el('tr', {},
      el('td', { text: r.id }), el('td', { text: r.name }),
      el('td', { text: r.source_run ? `${r.source_run} (${r.exhibit})` : r.exhibit }),
      el('td', {}, ...r.steps.map((s) => el('span', { class: `lane ${s.lane}`, text: `${s.step}. ${s.op}${flickerText(s)}`, title: flickerTitle(s) }))),
      el('td', { class: 'muted', text: counts }),
      el('td', { title: r.warnings.join('\n'), text: String(r.warnings.length) }),
      el('td', { text: `${r.tainted ? 'tainted (inferred content) ' : ''}${r.superseded ? 'superseded' : 'current'}` }),
      el('td', {}, el('button', { onclick: () => openCompare(r.exhibit, r.id) }, 'Compare'))));
  }
  if (!o.runs.length) body.append(el('tr', {}, el('td', { colspan: 8, class: 'muted', text: 'no run yet' })));
}

// A generative video step's flicker factor: its consecutive outputs' warping error over its
// inputs' (docs/spec.md 3.2); 1 = as steady as the input.
function flickerText(s) {
  const t = s.temporal_consistency;
  return t ? ` (flicker ×${Number(t.flicker_factor).toFixed(2)})` : '';
}

function flickerTitle(s) {
  const t = s.temporal_consistency;
  return t ? `temporal flicker factor ${t.flicker_factor} over ${t.pairs} frame pairs (warping error: outputs ${t.warping_error_output}, inputs ${t.warping_error_input}; ${(100 * t.valid_fraction).toFixed(1)}% of pixels valid)` : '';
}

function runFlicker(ref) {
  const run = (state.overview?.runs || []).find((r) => r.id === ref);
  const steps = (run?.steps || []).filter((s) => s.temporal_consistency);
  return steps.map((s) => ` · step ${s.step} temporal flicker factor ${Number(s.temporal_consistency.flicker_factor).toFixed(3)}`).join('');
}

function renderReports(o) {
  const list = $('#reports'); list.replaceChildren();
  const brief = $('#reports-overview');
  brief.textContent = o.reports.length ? o.reports.map((r) => `${r.kind === 'report.approved' ? 'approval of ' : ''}report ${r.number} (${r.pages || '?'} pages)`).join('; ') : 'none yet';
  for (const r of o.reports.filter((x) => x.kind !== 'report.approved')) {
    list.append(el('li', {}, `Report ${r.number} — ${r.pages || '?'} pages `,
      el('span', { class: 'hash', text: r.sha256.slice(0, 16) + '… ' }),
      el('button', { onclick: () => { const f = $('#report-view'); f.src = `/api/report/${r.number}.pdf`; f.classList.remove('hidden'); } }, 'View'),
      el('button', { onclick: () => verifyReport(null, r.number) }, 'Verify')));
  }
}

// -- verification (numbered checks, as the CLI prints them) -------------------------------------

function renderChecks(list, checks) {
  list.replaceChildren();
  for (const c of checks) {
    const li = el('li', { class: `status-${c.status}` }, `${c.number}. ${c.name}: ${c.status}${c.detail ? ` (${c.detail})` : ''}`);
    for (const n of c.notes || []) li.append(el('div', { class: 'note', text: `note: ${n}` }));
    list.append(li);
  }
}

async function poll(job, onUpdate) {
  for (;;) {
    const s = await api(`/api/jobs/${job}`);
    onUpdate(s);
    if (s.state !== 'running') return s;
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function verifyCase() {
  if (state.verifying) return;
  state.verifying = true;
  const badge = $('#verify-badge');
  badge.className = 'badge verify-running'; badge.textContent = 'verifying…';
  $('#verify-summary').textContent = ''; $('#verify-summary').className = 'summary';
  try {
    const { job } = await api('/api/verify', { method: 'POST', body: { pixels: $('#verify-pixels').checked, replay: $('#verify-replay').checked } });
    const s = await poll(job, (st) => { renderChecks($('#checks'), st.checks); badge.textContent = `verifying… ${st.checks.length} checks`; });
    if (s.state !== 'done') throw new Error(s.error || s.state);
    const ok = s.result.ok;
    badge.className = `badge ${ok ? 'verify-ok' : 'verify-fail'}`;
    badge.textContent = ok ? `verified ✔ ${s.checks.length} checks passed` : 'VERIFICATION FAILED';
    const summary = $('#verify-summary');
    summary.textContent = ok ? 'Verification passed.' : `Verification failed: ${s.result.failure}`;
    summary.className = `summary ${ok ? 'ok' : 'fail'}`;
  } catch (e) {
    badge.className = 'badge verify-fail'; badge.textContent = 'verification error'; toast(e.message);
  } finally { state.verifying = false; }
}

// -- the evidence viewer ------------------------------------------------------------------------

const viewer = {
  view: null, source: null, info: null, frame: 0, image: null, fieldMode: 'frame', showingPreview: false,
  drag: null,
  init() {
    this.view = new PixelView($('#view-canvas'), { onChange: () => {} });
    this.view.overlays.push(drawPicks);
    this.view.overlays.push((ctx, v) => drawInferred(ctx, v, v.image?.info?.inferred_box));
    const canvas = this.view.canvas;
    dragPan(this.view, () => state.tool === 'pan');
    canvas.addEventListener('pointermove', (e) => this.cursor(e));
    canvas.addEventListener('pointerdown', (e) => this.pointerDown(e));
    canvas.addEventListener('pointermove', (e) => { if (this.drag) { this.drag.end = this.view.toSource(e.offsetX, e.offsetY); updateRect(this.drag); } });
    canvas.addEventListener('pointerup', () => { this.drag = null; renderPicks(); });
    $('#view-source').addEventListener('change', (e) => this.open(e.target.value, 0));
    $('#frame-prev').addEventListener('click', () => this.step(-1));
    $('#frame-next').addEventListener('click', () => this.step(1));
    $('#frame-first').addEventListener('click', () => this.go(0));
    $('#frame-last').addEventListener('click', () => this.go((this.info?.frame_count || 1) - 1));
    $('#frame-input').addEventListener('change', (e) => this.go(Number(e.target.value)));
    $('#time-go').addEventListener('click', () => this.goTime($('#time-input').value));
    $('#field-view').addEventListener('change', (e) => { this.fieldMode = e.target.value; this.display(); });
    $('#show-preview').addEventListener('change', (e) => { this.showingPreview = e.target.checked; this.display(); });
    $$('[data-zoom]').forEach((b) => b.addEventListener('click', () => (b.dataset.zoom === 'fit' ? this.view.fit() : this.view.zoomTo(Number(b.dataset.zoom)))));
    $$('[data-tool]').forEach((b) => b.addEventListener('click', () => {
      state.tool = b.dataset.tool; $$('[data-tool]').forEach((x) => x.classList.toggle('active', x === b));
      if (state.tool === 'quad') state.picks.quad = [];
      if (state.tool === 'points') state.picks.points = [];
      renderPicks();
    }));
    $('#picks-clear').addEventListener('click', () => { state.picks = { rect: null, quad: [], points: [] }; renderPicks(); });
    document.addEventListener('keydown', (e) => {
      if (!$('#tab-examine').classList.contains('active') || ['INPUT', 'SELECT', 'TEXTAREA'].includes(e.target.tagName)) return;
      if (e.key === 'ArrowRight') this.step(1);
      if (e.key === 'ArrowLeft') this.step(-1);
    });
  },
  async open(ref, index) {
    this.source = ref; this.frame = index || 0;
    state.previewImage = null; this.showingPreview = false;
    $('#show-preview').checked = false; $('#show-preview').disabled = true;
    await this.load({ keep: false });
  },
  async load({ keep = true } = {}) {
    if (!this.source) return;
    const started = performance.now();
    try {
      const image = await loadBitmap(`/api/image/${this.source}?index=${this.frame}`);
      this.image = image; this.info = image.info;
      this.frame = image.info.index ?? 0;
      this.display(keep);
      const i = image.info;
      $('#frame-input').value = this.frame;
      $('#frame-controls').classList.toggle('hidden', i.media !== 'video');
      const shown = (performance.now() - started).toFixed(0);
      $('#frame-info').textContent = i.media === 'video'
        ? `${this.source} frame ${i.index} / ${i.frame_count - 1}` + (i.pts !== undefined ? ` · PTS ${i.pts}` : '') + (i.timecode ? ` · ${i.timecode}` : '') + (i.picture_type ? ` · ${i.picture_type}-frame${i.key ? ' (key)' : ''}` : '') + (i.source_frame !== undefined ? ` · from source frame ${i.source_frame}` : '') + (i.hash_matches_record ? ' · hash = record ✔' : '') + ` · ${i.width}×${i.height} · ${shown} ms`
        : `${this.source} · ${i.kind} · ${i.width}×${i.height} ${i.dtype}${i.tainted ? ' · TAINTED (inferred content)' : ''}`;
    } catch (e) { toast(e.message); }
  },
  step(delta) { if (this.info?.media === 'video') this.go(this.frame + delta); },
  go(index) {
    const last = (this.info?.frame_count || 1) - 1;
    this.frame = Math.max(0, Math.min(last, Math.round(index) || 0));
    state.previewImage = null; $('#show-preview').checked = false; $('#show-preview').disabled = true; this.showingPreview = false;
    return this.load();
  },
  async goTime(text) {
    // The server finds the frame on the PTS timeline, as a recipe's `seconds` is resolved.
    const seconds = Number(text);
    if (!this.source || !/^E\d+$/.test(this.source) || text.trim() === '' || !Number.isFinite(seconds)) { toast('give a time in seconds (video exhibits)'); return; }
    try {
      const { info } = await api(`/api/image/${this.source}?time=${encodeURIComponent(seconds)}&raw=1`);
      await this.go(info.index);
    } catch (e) { toast(e.message); }
  },
  display(keep = true) {
    const img = this.showingPreview && state.previewImage ? state.previewImage : this.image;
    $('#preview-banner').classList.toggle('hidden', !(this.showingPreview && state.previewImage));
    this.view.renderImage = (this.fieldMode !== 'frame' && img === this.image) ? fieldRenderer(this.fieldMode) : null;
    this.view.setImage(img, { keep });
    drawHistogram($('#histogram'), img);
  },
  current() { return this.showingPreview && state.previewImage ? state.previewImage : this.image; },
  cursor(e) {
    const [x, y] = this.view.pixelAt(e.offsetX, e.offsetY);
    const img = this.current();
    let row = y;
    if (this.fieldMode !== 'frame' && img === this.image) row = fieldRow(y, this.fieldMode, img.height);
    const v = valueAt(img, x, row);
    const [sx, sy] = this.view.toSource(e.offsetX, e.offsetY);
    $('#cursor-info').textContent = v ? `x ${x}  y ${row}  (${sx.toFixed(1)}, ${sy.toFixed(1)})  ${this.info?.channels === 1 ? `value ${v[0]}` : `R ${v[0]} G ${v[1]} B ${v[2]}`}  zoom ${this.view.scale.toFixed(2)}×` : `zoom ${this.view.scale.toFixed(2)}×`;
  },
  pointerDown(e) {
    if (state.tool === 'pan' || this.current() !== this.image) return;
    const p = this.view.toSource(e.offsetX, e.offsetY).map((v) => Math.round(v * 10) / 10);
    if (state.tool === 'rect') { this.drag = { start: p, end: p }; updateRect(this.drag); }
    if (state.tool === 'quad') { if (state.picks.quad.length >= 4) state.picks.quad = []; state.picks.quad.push(p); }
    if (state.tool === 'points') state.picks.points.push(p);
    renderPicks();
  },
};

function fieldRow(y, mode, height) { const parity = mode === 'top' ? 0 : 1; const r = (y - (y % 2)) + parity; return Math.min(r, height - 1); }

function fieldRenderer(mode) {
  // One field, line-doubled (each of its rows drawn twice): no interpolation between fields.
  return (ctx, view) => {
    const img = view.image, parity = mode === 'top' ? 0 : 1;
    for (let y = parity; y < img.height; y += 2) {
      const top = y - parity;
      ctx.drawImage(img.bitmap, 0, y, img.width, 1, view.ox, view.oy + top * view.scale, img.width * view.scale, Math.min(2, img.height - top) * view.scale);
    }
  };
}

function updateRect(drag) {
  const [x0, y0] = drag.start, [x1, y1] = drag.end;
  // Whole pixels: the box covers every pixel the drag touched.
  const x = Math.max(0, Math.round(Math.min(x0, x1))), y = Math.max(0, Math.round(Math.min(y0, y1)));
  const w = Math.max(1, Math.round(Math.max(x0, x1)) - x + 1), h = Math.max(1, Math.round(Math.max(y0, y1)) - y + 1);
  state.picks.rect = [x, y, w, h];
  viewer.view.draw();
}

function drawPicks(ctx, view) {
  if (viewer.current() !== viewer.image) return;
  ctx.lineWidth = 2;
  const r = state.picks.rect;
  if (r) {
    const [ax, ay] = view.toScreen(r[0] - 0.5, r[1] - 0.5);
    ctx.strokeStyle = '#00e0ff'; ctx.strokeRect(ax, ay, r[2] * view.scale, r[3] * view.scale);
  }
  const quad = state.picks.quad;
  if (quad.length) {
    ctx.strokeStyle = '#ffe600'; ctx.fillStyle = '#ffe600'; ctx.beginPath();
    quad.forEach((p, i) => { const [sx, sy] = view.toScreen(p[0], p[1]); if (i) ctx.lineTo(sx, sy); else ctx.moveTo(sx, sy); });
    if (quad.length === 4) ctx.closePath();
    ctx.stroke();
    ctx.font = 'bold 12px system-ui';
    quad.forEach((p, i) => { const [sx, sy] = view.toScreen(p[0], p[1]); ctx.fillRect(sx - 3, sy - 3, 6, 6); ctx.fillText(['TL', 'TR', 'BR', 'BL'][i], sx + 5, sy - 5); });
  }
  const pts = state.picks.points;
  if (pts.length) {
    ctx.strokeStyle = '#7dff6b'; ctx.fillStyle = '#7dff6b'; ctx.beginPath();
    pts.forEach((p, i) => { const [sx, sy] = view.toScreen(p[0], p[1]); if (i) ctx.lineTo(sx, sy); else ctx.moveTo(sx, sy); });
    ctx.stroke();
    pts.forEach((p) => { const [sx, sy] = view.toScreen(p[0], p[1]); ctx.fillRect(sx - 3, sy - 3, 6, 6); });
  }
}

function renderPicks() {
  const p = state.picks, lines = [];
  if (p.rect) lines.push(`rectangle x ${p.rect[0]}, y ${p.rect[1]}, ${p.rect[2]} × ${p.rect[3]} px`);
  if (p.quad.length) lines.push(`corners (${p.quad.length}/4): ` + p.quad.map((q, i) => `${['TL', 'TR', 'BR', 'BL'][i]} (${q[0]}, ${q[1]})`).join('  '));
  if (p.points.length) {
    let length = 0; for (let i = 1; i < p.points.length; i++) length += Math.hypot(p.points[i][0] - p.points[i - 1][0], p.points[i][1] - p.points[i - 1][1]);
    lines.push(`points: ` + p.points.map((q) => `(${q[0]}, ${q[1]})`).join(' ') + (p.points.length > 1 ? `  polyline ${length.toFixed(1)} px` : ''));
  }
  $('#picks').textContent = lines.join('\n') || 'none';
  viewer.view.draw();
}

function drawHistogram(canvas, image) {
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!image) return;
  const bins = [new Uint32Array(256), new Uint32Array(256), new Uint32Array(256)];
  const d = image.data.data;
  for (let i = 0; i < d.length; i += 4) { bins[0][d[i]]++; bins[1][d[i + 1]]++; bins[2][d[i + 2]]++; }
  let max = 1; for (const b of bins) for (const v of b) max = Math.max(max, v);
  const colours = ['rgba(255,80,80,0.8)', 'rgba(80,255,80,0.8)', 'rgba(90,140,255,0.8)'];
  ctx.globalCompositeOperation = 'lighter';
  bins.forEach((b, c) => {
    ctx.strokeStyle = colours[c]; ctx.beginPath();
    for (let x = 0; x < 256; x++) { const h = Math.sqrt(b[x] / max) * canvas.height; ctx.moveTo(x + 0.5, canvas.height); ctx.lineTo(x + 0.5, canvas.height - h); }
    ctx.stroke();
  });
  ctx.globalCompositeOperation = 'source-over';
}

// -- sources ------------------------------------------------------------------------------------

function sourceOptions(o, { maps = false } = {}) {
  const out = [];
  for (const ex of o.exhibits) out.push([ex.id, `${ex.id} ${ex.name} (${ex.media})`]);
  for (const r of o.runs) {
    out.push([r.id, `${r.id} output: ${r.name}`]);
    if (maps) out.push([`${r.id}.map`, `${r.id} provenance map`]);
    for (const s of r.steps) {
      if (s.kept) out.push([`${r.id}.${s.step}`, `${r.id} step ${s.step} (${s.op}) intermediate`]);
      for (const m of s.maps || []) out.push([`${r.id}.${s.step}.${m}`, `${r.id} step ${s.step} ${m} map (generative: INFERRED)`]);
      for (const m of s.masks || []) out.push([m, `${m} defect mask (step ${s.step}, ${s.op})`]);
    }
  }
  return out;
}

function fillSources(o) {
  const fill = (select, options) => {
    const keep = select.value;
    select.replaceChildren(...options.map(([v, t]) => el('option', { value: v, text: t })));
    if (options.some(([v]) => v === keep)) select.value = keep;
  };
  fill($('#view-source'), sourceOptions(o));
  fill($('#cmp-a'), sourceOptions(o));
  fill($('#cmp-b'), sourceOptions(o));
  if (!viewer.source && o.exhibits.length) selectSource(o.exhibits[0].id);
}

function selectSource(ref) { $('#view-source').value = ref; viewer.open(ref, 0); }

// -- the recipe editor --------------------------------------------------------------------------

async function loadOperations() {
  const { operations } = await api('/api/operations');
  const select = $('#op-select');
  let group = null, category = null;
  for (const op of operations) {
    state.operations[op.name] = op;
    if (op.category !== category) { category = op.category; group = el('optgroup', { label: category }); select.append(group); }
    group.append(el('option', { value: op.name, text: op.name }));
  }
  select.addEventListener('change', () => showOpHelp(select.value));
  showOpHelp(select.value);
}

async function loadDevices() {
  // Where generative steps may run: auto, cpu, cuda; one the machine or the policy rules out
  // is disabled and says why (its title, and the text after its name).
  const { devices } = await api('/api/devices');
  const select = $('#run-device');
  select.replaceChildren();
  for (const d of devices) {
    const why = d.available ? (d.note || (d.uses ? `runs on ${d.uses}` : '')) : d.reason;
    const text = d.available ? d.name : `${d.name} (unavailable)`;
    select.append(el('option', { value: d.name, text, disabled: !d.available, title: why || null, 'data-reason': d.reason || null }));
  }
  const first = devices.find((d) => d.available);
  if (first) select.value = first.name;
}

function showOpHelp(name) {
  const op = state.operations[name];
  if (!op) return;
  const refs = op.references.map((r) => `  ${r.citation}${r.doi ? ` doi:${r.doi}` : ''}`).join('\n');
  const help = $('#op-help');
  help.replaceChildren(el('div', { text: `${op.summary}${op.temporal && op.temporal !== 'frame' ? ' (works over a range of frames)' : ''}` }),
    el('details', {}, el('summary', { text: `description and ${op.references.length} reference(s)` }), el('div', { text: `${op.description}\n${refs}` })));
}

function addStep(op, params = {}, extra = {}) {
  state.steps.push({ op, params: { ...params }, roi: extra.roi ?? null, frames: extra.frames ?? null, seconds: extra.seconds ?? null });
  renderSteps();
}

function paramInput(step, p) {
  const value = step.params[p.name];
  const set = (v) => { if (v === '' || v === null || v === undefined) delete step.params[p.name]; else step.params[p.name] = v; };
  let input;
  if (p.choices) {
    input = el('select', {}, el('option', { value: '', text: p.default !== null && p.default !== undefined ? `default (${p.default})` : (p.auto ? `auto (${p.auto})` : '—') }), ...p.choices.map((c) => el('option', { value: c, text: c })));
    input.value = value ?? '';
    input.addEventListener('change', () => set(input.value));
  } else if (p.type === 'bool') {
    input = el('select', {}, el('option', { value: '', text: `default (${p.default})` }), el('option', { value: 'true', text: 'true' }), el('option', { value: 'false', text: 'false' }));
    input.value = value === undefined ? '' : String(value);
    input.addEventListener('change', () => set(input.value === '' ? '' : input.value === 'true'));
  } else if (p.type === 'int' || p.type === 'float') {
    input = el('input', { type: 'number', step: p.type === 'int' ? '1' : 'any', min: p.minimum ?? null, max: p.maximum ?? null, placeholder: p.auto ? `auto: ${p.auto}` : (p.default ?? '') });
    input.value = value ?? '';
    input.addEventListener('change', () => set(input.value === '' ? '' : (p.type === 'int' ? parseInt(input.value, 10) : parseFloat(input.value))));
  } else if (p.type === 'floats') {
    input = el('input', { type: 'text', placeholder: p.auto ? `auto: ${p.auto}` : 'comma-separated numbers' });
    input.value = Array.isArray(value) ? value.join(', ') : '';
    input.addEventListener('change', () => set(input.value.trim() === '' ? '' : input.value.split(/[ ,]+/).filter(Boolean).map(Number)));
  } else {
    input = el('input', { type: 'text', placeholder: p.auto ? `auto: ${p.auto}` : (p.default ?? '') });
    input.value = value ?? '';
    input.addEventListener('change', () => set(input.value));
  }
  input.name = p.name;
  return el('label', { title: p.description }, el('span', { text: `${p.name}${p.required ? ' *' : ''}${p.unit ? ` (${p.unit})` : ''}` }), input, el('span', { class: 'hint', text: p.allowed }));
}

function renderSteps() {
  const list = $('#steps'); list.replaceChildren();
  state.steps.forEach((step, i) => {
    const op = state.operations[step.op];
    const head = el('div', { class: 'step-head' }, el('span', { text: step.op }), el('span', { class: 'spacer' }),
      el('button', { title: 'Move up', onclick: () => { if (i) { [state.steps[i - 1], state.steps[i]] = [state.steps[i], state.steps[i - 1]]; renderSteps(); } } }, '↑'),
      el('button', { title: 'Remove', onclick: () => { state.steps.splice(i, 1); renderSteps(); } }, '✕'));
    const li = el('li', {}, head);
    if (op) for (const p of op.parameters) li.append(paramInput(step, p));
    const frames = el('input', { type: 'text', placeholder: 'all (video: first, last)' });
    frames.value = step.frames ? step.frames.join(', ') : '';
    frames.name = 'frames';
    frames.addEventListener('change', () => { const v = frames.value.split(/[ ,]+/).filter(Boolean).map(Number); step.frames = v.length ? v : null; });
    li.append(el('label', { title: 'Video frames this step applies to' }, el('span', { text: 'frames' }), frames));
    const roi = el('input', { type: 'text', placeholder: 'whole image (x, y, w, h)' });
    roi.value = step.roi ? step.roi.join(', ') : '';
    roi.name = 'roi';
    roi.addEventListener('change', () => { const v = roi.value.split(/[ ,]+/).filter(Boolean).map(Number); step.roi = v.length ? v : null; });
    li.append(el('label', { title: 'Region the step applies to' }, el('span', { text: 'roi' }), roi));
    list.append(li);
  });
}

function recipeBody(extra = {}) {
  return { recipe: { name: $('#recipe-name').value || 'workbench', steps: state.steps }, source: viewer.source, index: viewer.frame, ...extra };
}

function showProblems(problems) {
  const box = $('#problems');
  box.className = `problems ${problems.length ? '' : 'ok'}`;
  box.textContent = problems.length ? problems.map((p) => `error: ${p}`).join('\n') : 'The recipe checks: no problem found.';
}

async function checkRecipe() {
  const r = await api('/api/recipe/check', { method: 'POST', body: recipeBody() });
  showProblems(r.problems);
  return r;
}

async function previewRecipe() {
  try {
    const image = await loadBitmap('/api/preview', { method: 'POST', body: recipeBody() });
    state.previewImage = image;
    const i = image.info;
    $('#show-preview').disabled = false; $('#show-preview').checked = true; viewer.showingPreview = true;
    viewer.display(false);
    showProblems([]);
    $('#preview-info').textContent = `${i.label} — ${viewer.source} frame ${i.index ?? '-'}; ${i.width}×${i.height}; computed in ${i.compute_ms} ms (${i.total_ms} ms in all)\n` +
      i.steps.map((s) => `  ${s.step}. ${s.op}: ${s.applied ? `${s.duration_ms.toFixed(1)} ms` : 'not on this frame'}`).join('\n') +
      (i.warnings.length ? `\n${i.warnings.join('\n')}` : '');
  } catch (e) { showProblems([e.message]); }
}

async function runRecipe() {
  const box = $('#run-progress'), bar = box.querySelector('.bar'), label = box.querySelector('.label');
  try {
    const { job } = await api('/api/run', { method: 'POST', body: recipeBody({ name: $('#recipe-name').value, keep_intermediates: $('#keep-intermediates').checked, again: $('#run-again').checked, device: $('#run-device').value }) });
    box.classList.remove('hidden'); bar.style.width = '0';
    $('#run-cancel').onclick = () => api(`/api/jobs/${job}/cancel`, { method: 'POST', body: {} });
    const s = await poll(job, (st) => {
      const pct = st.total ? (100 * st.done) / st.total : 0;
      bar.style.width = `${pct}%`;
      label.textContent = st.total ? `frames ${st.done}/${st.total}${st.eta_s !== null ? `, about ${st.eta_s} s left` : ''}` : `running… ${st.elapsed_s} s`;
    });
    if (s.state !== 'done') throw new Error(s.error || s.state);
    bar.style.width = '100%';
    label.textContent = `run ${s.result.run} recorded and signed (${s.result.steps.length} steps)`;
    toast(`run ${s.result.run} recorded and signed`, 'info');
    await loadOverview();
    verifyCase();
  } catch (e) {
    label.textContent = ''; box.classList.add('hidden');
    showProblems(e.data?.problems || [e.message]);
  }
}

async function saveRecipe() {
  const r = await checkRecipe();
  if (!r.toml) return;
  const url = URL.createObjectURL(new Blob([r.toml], { type: 'application/toml' }));
  const a = el('a', { href: url, download: `${$('#recipe-name').value || 'workbench'}.toml` });
  document.body.append(a); a.click(); a.remove(); URL.revokeObjectURL(url);
}

async function loadRecipe(file) {
  try {
    const r = await api('/api/recipe/parse', { method: 'POST', body: { toml: await file.text() } });
    $('#recipe-name').value = r.recipe.name;
    state.steps = r.recipe.steps.map((s) => ({ ...s, params: { ...s.params } }));
    renderSteps(); showProblems([]);
  } catch (e) { showProblems([e.message]); }
}

function pickToStep(kind) {
  const p = state.picks;
  if (kind === 'register') {
    if (!p.rect) { toast('draw a rectangle first (Rectangle tool)'); return; }
    const [x, y, width, height] = p.rect;
    const region = { region_x: x, region_y: y, region_width: width, region_height: height };
    const last = state.steps[state.steps.length - 1];
    const takesRegion = (step) => (state.operations[step.op]?.parameters || []).some((q) => q.name === 'region_x');
    if (last && takesRegion(last)) Object.assign(last.params, region);
    else addStep('register_frames', region, { frames: viewer.info?.media === 'video' ? [viewer.frame, Math.min(viewer.frame + 7, (viewer.info.frame_count || 1) - 1)] : null });
    renderSteps();
    return;
  }
  if (kind === 'crop' || kind === 'redact' || kind === 'roi') {
    if (!p.rect) { toast('draw a rectangle first (Rectangle tool)'); return; }
    const [x, y, width, height] = p.rect;
    if (kind === 'crop') addStep('crop', { x, y, width, height });
    if (kind === 'redact') addStep('redact_fill', { x, y, width, height }, { frames: viewer.info?.media === 'video' ? [viewer.frame, viewer.frame] : null });
    if (kind === 'roi') { if (!state.steps.length) { toast('add a step first'); return; } state.steps[state.steps.length - 1].roi = [x, y, width, height]; renderSteps(); }
  }
  if (kind === 'perspective') {
    if (p.quad.length !== 4) { toast('click four corners first (4 corners tool): top-left, top-right, bottom-right, bottom-left'); return; }
    addStep('perspective', { corners: p.quad.flat() });
  }
}

// -- compare ------------------------------------------------------------------------------------

const compare = {
  a: null, b: null, imgA: null, imgB: null, mapB: null, maskB: null, flicker: null, flickShowB: false,
  init() {
    this.a = new PixelView($('#cmp-canvas-a'));
    this.b = new PixelView($('#cmp-canvas-b'));
    this.a.peers = [this.b]; this.b.peers = [this.a];
    dragPan(this.a, () => true); dragPan(this.b, () => true);
    this.a.renderImage = (ctx, v) => this.renderMain(ctx, v);
    this.a.overlays.push((ctx, v) => this.overlay(ctx, v, this.mainIsB()));
    this.b.overlays.push((ctx, v) => this.overlay(ctx, v, true));
    for (const id of ['#cmp-a', '#cmp-b', '#cmp-a-index', '#cmp-b-index']) $(id).addEventListener('change', () => this.load());
    $('#cmp-mode').addEventListener('change', () => this.render());
    $('#cmp-slider').addEventListener('input', () => this.a.draw());
    $('#cmp-provenance').addEventListener('change', () => this.render());
    $('#cmp-mask').addEventListener('change', () => this.loadMask().then(() => this.render()));
    $$('[data-czoom]').forEach((b) => b.addEventListener('click', () => (b.dataset.czoom === 'fit' ? this.a.fit() : this.a.zoomTo(Number(b.dataset.czoom)))));
    this.a.canvas.addEventListener('pointermove', (e) => this.cursor(e, this.a));
    this.b.canvas.addEventListener('pointermove', (e) => this.cursor(e, this.b));
    $('#legend').replaceChildren(...CLASSES.map(([name, c]) => el('span', {}, swatch(c), name)));
  },
  mode() { return $('#cmp-mode').value; },
  mainIsB() { return this.mode() === 'flicker' && this.flickShowB; },
  async load() {
    try {
      const a = $('#cmp-a').value, b = $('#cmp-b').value;
      if (!a || !b) return;
      [this.imgA, this.imgB] = await Promise.all([
        loadBitmap(`/api/image/${a}?index=${$('#cmp-a-index').value || 0}`),
        loadBitmap(`/api/image/${b}?index=${$('#cmp-b-index').value || 0}`),
      ]);
      this.mapB = null;
      if (/^R\d+$/.test(b)) this.mapB = await loadBitmap(`/api/image/${b}.map?index=${$('#cmp-b-index').value || 0}`);
      const ia = this.imgA.info, ib = this.imgB.info;
      const inferred = this.mapB ? countClass(this.mapB, 3) : 0;
      $('#cmp-info').textContent = `A ${a} ${ia.width}×${ia.height}${ia.index !== undefined ? ` frame ${ia.index}` : ''} · B ${b} ${ib.width}×${ib.height}${ib.index !== undefined ? ` frame ${ib.index}` : ''}${ib.source_frame !== undefined ? ` (source frame ${ib.source_frame})` : ''}${inferred ? ` · ${inferred} INFERRED pixels` : ''}${runFlicker(b)}`;
      this.fillMasks(b);
      await this.loadMask();
      this.a.setImage(this.imgA); this.b.image = this.imgB; this.render();
    } catch (e) { toast(e.message); }
  },
  // Defect masks of B's run (detect_defects, fill_defects): one may be drawn over B in red.
  fillMasks(b) {
    const run = (state.overview?.runs || []).find((r) => r.id === b);
    const refs = (run?.steps || []).flatMap((s) => s.masks || []);
    const select = $('#cmp-mask'), keep = select.value;
    select.replaceChildren(el('option', { value: '', text: 'none' }), ...refs.map((m) => el('option', { value: m, text: m })));
    if (refs.includes(keep)) select.value = keep;
  },
  async loadMask() {
    const ref = $('#cmp-mask').value;
    this.maskB = null;
    const info = $('#cmp-info'), base = info.textContent.replace(/ · defect mask .*$/, '');
    info.textContent = base;
    if (!ref) return;
    // The index is B's output frame; the server finds the step's record of that frame and
    // says so when the step did not run on it (a step given a frame range).
    let mask;
    try { mask = await loadBitmap(`/api/image/${ref}?index=${$('#cmp-b-index').value || 0}`); }
    catch (e) { info.textContent = `${base} · defect mask ${ref}: ${e.message}`; return; }
    const out = new ImageData(mask.width, mask.height), d = mask.data.data, o = out.data;
    for (let i = 0; i < d.length; i += 4) if (d[i] === 255) { o[i] = 255; o[i + 1] = 30; o[i + 2] = 30; o[i + 3] = 200; }
    const canvas = new OffscreenCanvas(mask.width, mask.height); canvas.getContext('2d').putImageData(out, 0, 0);
    this.maskB = { canvas, width: mask.width, height: mask.height, pixels: mask.info.pixels };
    info.textContent = `${base} · defect mask ${ref}: ${mask.info.pixels} px (red)`;
  },
  render() {
    const mode = this.mode();
    $('#cmp-wrap-b').classList.toggle('hidden', mode !== 'side');
    $('#cmp-slider').classList.toggle('hidden', mode !== 'slider');
    clearInterval(this.flicker); this.flicker = null;
    if (mode === 'flicker') this.flicker = setInterval(() => { this.flickShowB = !this.flickShowB; this.a.draw(); }, 600);
    this.a.resize(); this.b.resize();
    this.a.sync();
  },
  renderMain(ctx, v) {
    const A = this.imgA, B = this.imgB, mode = this.mode();
    if (!A) return;
    const draw = (img) => ctx.drawImage(img.bitmap, v.ox, v.oy, img.width * v.scale, img.height * v.scale);
    if (mode === 'side') { draw(A); return; }
    if (mode === 'flicker') { draw(this.flickShowB && B ? B : A); return; }
    if (mode === 'difference') {
      if (!B || A.width !== B.width || A.height !== B.height) { draw(A); $('#cmp-info').textContent = 'difference needs A and B of the same size (same geometry)'; return; }
      if (!this.diff || this.diff.src !== `${A.info.ref}${A.info.index}|${B.info.ref}${B.info.index}`) {
        const out = new ImageData(A.width, A.height), a = A.data.data, b = B.data.data, o = out.data;
        let max = 0;
        for (let i = 0; i < a.length; i += 4) for (let c = 0; c < 3; c++) max = Math.max(max, Math.abs(a[i + c] - b[i + c]));
        const gain = max ? 255 / max : 1;
        for (let i = 0; i < a.length; i += 4) { for (let c = 0; c < 3; c++) o[i + c] = Math.abs(a[i + c] - b[i + c]) * gain; o[i + 3] = 255; }
        const canvas = new OffscreenCanvas(A.width, A.height); canvas.getContext('2d').putImageData(out, 0, 0);
        this.diff = { src: `${A.info.ref}${A.info.index}|${B.info.ref}${B.info.index}`, canvas, max, gain };
      }
      ctx.drawImage(this.diff.canvas, v.ox, v.oy, A.width * v.scale, A.height * v.scale);
      $('#cmp-info').textContent = `|A − B|, largest difference ${this.diff.max} grey levels, shown ×${this.diff.gain.toFixed(1)}`;
      return;
    }
    // slider: A left of the handle, B right of it
    draw(A);
    if (!B) return;
    const [w] = v.cssSize();
    const cut = (Number($('#cmp-slider').value) / 1000) * w;
    ctx.save(); ctx.beginPath(); ctx.rect(cut, 0, w, 1e5); ctx.clip(); draw(B); ctx.restore();
    ctx.strokeStyle = '#fff'; ctx.lineWidth = 2; ctx.beginPath(); ctx.moveTo(cut, 0); ctx.lineTo(cut, 1e5); ctx.stroke();
    ctx.fillStyle = '#fff'; ctx.font = 'bold 12px system-ui'; ctx.fillText('A', cut - 16, 16); ctx.fillText('B', cut + 6, 16);
  },
  overlay(ctx, v, showsB) {
    // Provenance of B: coloured overlay when asked; the INFERRED label is always drawn.
    const map = this.mapB;
    if (!map || !this.imgB) return;
    const mode = this.mode();
    const [w] = v.cssSize();
    const clipX = mode === 'slider' && v === this.a ? (Number($('#cmp-slider').value) / 1000) * w : (showsB || v === this.b ? 0 : null);
    if (clipX === null) return;
    ctx.save(); ctx.beginPath(); ctx.rect(clipX, 0, 1e5, 1e5); ctx.clip();
    if ($('#cmp-provenance').checked) {
      if (!this.mapCanvas || this.mapCanvas.src !== map) this.mapCanvas = { src: map, canvas: colouredMap(map) };
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(this.mapCanvas.canvas, v.ox, v.oy, map.width * v.scale, map.height * v.scale);
    }
    if (this.maskB) {
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(this.maskB.canvas, v.ox, v.oy, this.maskB.width * v.scale, this.maskB.height * v.scale);
    }
    drawInferred(ctx, v, this.imgB.info.inferred_box);
    ctx.restore();
  },
  cursor(e, view) {
    const [x, y] = view.pixelAt(e.offsetX, e.offsetY);
    const a = valueAt(this.imgA, x, y), b = valueAt(this.imgB, x, y), m = this.mapB ? valueAt(this.mapB, x, y) : null;
    $('#cmp-info').textContent = `x ${x} y ${y}  A ${a ? a.join(',') : '-'}  B ${b ? b.join(',') : '-'}${m ? `  provenance ${CLASSES[m[0]]?.[0] ?? m[0]}` : ''}  zoom ${view.scale.toFixed(2)}×`;
  },
};

function swatch(c) {
  const i = el('i');
  i.style.background = `rgba(${c[0]},${c[1]},${c[2]},${Math.max(c[3], 60) / 255})`;  // CSSOM: allowed by the CSP
  return i;
}

// Inferred pixels are outlined and labelled wherever they are shown (viewer, preview, compare),
// with or without the provenance overlay.
function drawInferred(ctx, v, box) {
  if (!box) return;
  const x0 = v.ox + box[0] * v.scale, y0 = v.oy + box[1] * v.scale;
  const w = (box[2] - box[0] + 1) * v.scale, h = (box[3] - box[1] + 1) * v.scale;
  ctx.save();
  ctx.strokeStyle = '#ff28c8'; ctx.lineWidth = 2; ctx.setLineDash([6, 3]); ctx.strokeRect(x0, y0, w, h);
  ctx.setLineDash([]);
  const text = 'INFERRED — not evidence';
  ctx.font = 'bold 13px system-ui';
  const tw = ctx.measureText(text).width + 10, ty = y0 >= 20 ? y0 - 20 : y0 + h;
  ctx.fillStyle = '#ff28c8'; ctx.fillRect(x0 - 1, ty, tw, 19);
  ctx.fillStyle = '#fff'; ctx.fillText(text, x0 + 4, ty + 14);
  ctx.restore();
}

function colouredMap(map) {
  const out = new ImageData(map.width, map.height), d = map.data.data, o = out.data;
  for (let i = 0; i < d.length; i += 4) { const c = CLASSES[d[i]]?.[1] || [255, 0, 0, 255]; o[i] = c[0]; o[i + 1] = c[1]; o[i + 2] = c[2]; o[i + 3] = c[3]; }
  const canvas = new OffscreenCanvas(map.width, map.height); canvas.getContext('2d').putImageData(out, 0, 0);
  return canvas;
}

function countClass(map, code) { let n = 0; const d = map.data.data; for (let i = 0; i < d.length; i += 4) if (d[i] === code) n++; return n; }

function classBox(map, code) {
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1; const d = map.data.data;
  for (let y = 0; y < map.height; y++) for (let x = 0; x < map.width; x++) if (d[(y * map.width + x) * 4] === code) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
  return x1 < 0 ? null : [x0, y0, x1, y1];
}

function openCompare(a, b) {
  $('#cmp-a').value = a; $('#cmp-b').value = b;
  const run = state.overview.runs.find((r) => r.id === b);
  $('#cmp-b-index').value = 0;
  showTab('compare');
  // A video run's first output frame comes from its first source frame.
  compare.load().then(() => { if (compare.imgB?.info.source_frame !== undefined && run) { $('#cmp-a-index').value = compare.imgB.info.source_frame; compare.load(); } });
}

function renderCosign(o) {
  const box = $('#cosign-list');
  if (!o.awaiting_cosignature.length) { box.textContent = 'no generative step awaits a co-signature'; box.className = 'muted'; return; }
  box.className = ''; box.replaceChildren();
  for (const s of o.awaiting_cosignature) {
    const ref = `${s.run}.${s.step}`;
    box.append(el('div', { class: 'row' }, `${ref} ${s.op}: awaiting a second examiner's co-signature `,
      el('button', { disabled: o.read_only || !o.signer, onclick: async () => {
        try { const r = await api('/api/cosign', { method: 'POST', body: { step: ref } }); toast(`co-signed ${r.step}: ${r.statement}`, 'info'); await loadOverview(); verifyCase(); } catch (e) { toast(e.message); }
      } }, 'Co-sign')));
  }
}

// -- record and report --------------------------------------------------------------------------

async function loadJournal() {
  const { entries } = await api('/api/journal');
  const names = state.overview?.examiners || {};
  const body = $('#journal tbody'); body.replaceChildren();
  for (const e of entries) {
    const row = el('tr', { class: 'selectable' }, el('td', { text: String(e.seq) }), el('td', { text: e.time }), el('td', { text: e.kind }), el('td', { text: entrySummary(e) }),
      el('td', { text: names[e.actor] || `${String(e.actor).slice(0, 16)}…` }), el('td', { class: 'hash', text: `${e.hash.slice(0, 16)}…` }));
    row.addEventListener('click', () => {
      $$('#journal tr').forEach((r) => r.classList.remove('selected')); row.classList.add('selected');
      $('#entry-detail').textContent = JSON.stringify({ seq: e.seq, kind: e.kind, time: e.time, signed_by: e.actor, entry_sha256: e.hash, payload: e.payload }, null, 2);
    });
    body.append(row);
  }
}

function entrySummary(e) {
  const p = e.payload || {};
  switch (e.kind) {
    case 'case.open': return `case ${p.case_id || ''} opened: ${p.title || ''}`;
    case 'evidence.ingest': return `${p.exhibit} ${p.original?.name || ''} (${p.media || 'image'}), SHA-256 ${String(p.sha256 || '').slice(0, 12)}…`;
    case 'run.step': return `${p.run}.${p.step} ${p.op} (${p.lane})${(p.warnings || []).length ? `, ${p.warnings.length} warning(s)` : ''}`;
    case 'run': return `run ${p.run} "${p.name}" on ${p.exhibit}: ${(p.steps || []).length} step(s)${p.tainted ? ', TAINTED' : ''}`;
    case 'cosign': return `co-signature of ${p.step || String(p.entry || '').slice(0, 12) + '…'}`;
    default: return p.number !== undefined ? `report ${p.number}` : (p.run ? `run ${p.run}` : '');
  }
}

async function verifyReport(file, number) {
  try {
    const path = number ? `/api/report/verify?number=${number}` : '/api/report/verify';
    const r = await api(path, { method: 'POST', raw: file ? await file.arrayBuffer() : new Uint8Array() });
    renderChecks($('#report-checks'), r.checks);
    const s = $('#report-summary');
    s.textContent = r.ok ? `${r.report}: verified.` : `${r.report}: verification failed.`;
    s.className = `summary ${r.ok ? 'ok' : 'fail'}`;
  } catch (e) { toast(e.message); }
}

async function issueReport() {
  try {
    $('#report-issue').disabled = true;
    toast('issuing the report (the case is verified first)…', 'info');
    const r = await api('/api/report/issue', { method: 'POST', body: {} });
    toast(`report ${r.number} issued (${r.pages} pages)`, 'info');
    await loadOverview(); await loadJournal(); verifyCase();
  } catch (e) { toast(e.message); } finally { $('#report-issue').disabled = !state.overview?.reports_enabled; }
}

// -- start --------------------------------------------------------------------------------------

async function start() {
  $$('#tabs button').forEach((b) => b.addEventListener('click', () => showTab(b.dataset.tab)));
  $('#verify-badge').addEventListener('click', verifyCase);
  $('#verify-run').addEventListener('click', verifyCase);
  viewer.init(); compare.init();
  $('#op-add').addEventListener('click', () => addStep($('#op-select').value));
  $('#recipe-check').addEventListener('click', () => checkRecipe().catch((e) => showProblems([e.message])));
  $('#recipe-preview').addEventListener('click', previewRecipe);
  $('#recipe-run').addEventListener('click', runRecipe);
  $('#recipe-save').addEventListener('click', () => saveRecipe().catch((e) => showProblems([e.message])));
  $('#recipe-load').addEventListener('change', (e) => { if (e.target.files[0]) loadRecipe(e.target.files[0]); e.target.value = ''; });
  $('#pick-crop').addEventListener('click', () => pickToStep('crop'));
  $('#pick-perspective').addEventListener('click', () => pickToStep('perspective'));
  $('#pick-redact').addEventListener('click', () => pickToStep('redact'));
  $('#pick-roi').addEventListener('click', () => pickToStep('roi'));
  $('#pick-register').addEventListener('click', () => pickToStep('register'));
  $('#report-issue').addEventListener('click', issueReport);
  $('#report-file').addEventListener('change', (e) => { if (e.target.files[0]) verifyReport(e.target.files[0], null); });
  try {
    await Promise.all([loadOverview(), loadOperations()]);
  } catch (e) { toast(e.message); }
  // Not awaited: asking for a GPU loads torch on the server (seconds); until the list comes,
  // the selector holds "auto".
  loadDevices().catch((e) => toast(e.message));
  document.body.dataset.ready = 'true';
  verifyCase();
}

start();
