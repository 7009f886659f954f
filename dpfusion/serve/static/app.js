"use strict";
// The page holds its session id in memory only: every tab has its own session, nothing is shared.
const $ = (id) => document.getElementById(id);
const DEBOUNCE_MS = 150;
const state = { config: null, info: null, wanted: null, running: false, urls: {}, seq: 0, shown: null };

class Busy extends Error {
  constructor(seconds) { super(`the server is busy; retrying in ${seconds} s`); this.seconds = seconds; }
}

async function api(path, form, method = "POST") {
  const response = await fetch(path, { method, body: form });
  if (response.status === 503) throw new Busy(Number(response.headers.get("Retry-After") || 1));
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

function showError(error) {
  $("error").hidden = !error;
  $("error").textContent = error ? `error: ${error.message}` : "";
}

function setUrl(name, blob) {
  if (state.urls[name]) URL.revokeObjectURL(state.urls[name]);
  state.urls[name] = blob ? URL.createObjectURL(blob) : null;
  return state.urls[name];
}

function setBusy(text) {
  document.body.dataset.state = text ? "busy" : "idle";
  $("busy").hidden = !text;
  if (text) $("status").textContent = text;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function form(fields) {
  const data = new FormData();
  for (const [key, value] of Object.entries(fields)) if (value !== undefined && value !== null) data.append(key, value);
  return data;
}

function specForm(spec) {
  const fields = { steps: $("steps").value, seed: $("seed").value };
  if (spec.map) fields.tau_map = new File([spec.map], "tau_map.png", { type: "image/png" });
  else fields.tau = spec.tau;
  return form(fields);
}

// --- sessions -------------------------------------------------------------------------------------

async function startSession(path, fields) {
  showError(null);
  setBusy("encoding...");
  try {
    const info = await (await api(path, form(fields))).json();
    await adopt(info);
  } catch (error) {
    showError(error);
    setBusy(null);
  }
}

async function adopt(info) {
  state.info = info;
  const kb = (info.bytes / 1024).toFixed(1);
  $("size-info").textContent = `${info.name}: ${info.width}x${info.height}, ${info.bytes} bytes (${kb} KiB), `
    + `${info.bpp.toFixed(4)} bpp at rate ${info.quality}` + (info.notes.length ? ` (${info.notes.join("; ")})` : "");
  $("rate").value = info.quality;
  $("rate").disabled = !info.has_original || !state.config.rates.variable;
  $("rate-value").textContent = info.quality;
  $("tau").disabled = !state.config.fusion;
  $("decode-map").disabled = !state.config.fusion;
  const dpf = $("download-dpf");
  dpf.href = `/api/sessions/${info.session}/dpf`;
  dpf.download = `${info.name}.dpf`;
  dpf.classList.remove("disabled");
  $("compare").querySelector('[value="original"]').disabled = !info.has_original;
  if (!info.has_original && $("compare").value === "original") $("compare").value = "base";
  resetMap(info.width, info.height);
  const base = await (await api(`/api/sessions/${info.session}/decode`, specForm({ tau: "1" }))).blob();
  setUrl("base", base);
  const original = info.has_original ? await (await api(`/api/sessions/${info.session}/original.png`, null, "GET")).blob() : null;
  setUrl("original", original);
  want({ tau: $("tau").value });
}

// --- decoding: one request at a time, the latest wanted position wins ----------------------------------

function want(spec) {
  if (!state.info) return;
  state.wanted = { ...spec, session: state.info.session };
  pump();
}

async function pump() {
  if (state.running) return;
  state.running = true;
  try {
    while (state.wanted) {
      const spec = state.wanted;
      state.wanted = null;
      setBusy(`decoding ${spec.map ? "the tau map" : `tau = ${Number(spec.tau).toFixed(2)}`}...`);
      try {
        await decodeAndScore(spec);
      } catch (error) {
        if (!(error instanceof Busy)) { showError(error); continue; }
        $("status").textContent = error.message;
        if (!state.wanted) state.wanted = spec;
        await sleep(error.seconds * 1000);
      }
    }
  } finally {
    state.running = false;
    setBusy(null);
  }
}

async function decodeAndScore(spec) {
  const started = performance.now();
  const response = await api(`/api/sessions/${spec.session}/decode`, specForm(spec));
  const blob = await response.blob();
  if (state.wanted || spec.session !== state.info.session) return;  // stale: a newer request wins
  show(blob, spec, (performance.now() - started) / 1000);
  const scores = await (await api(`/api/sessions/${spec.session}/metrics`, specForm(spec))).json();
  if (spec === state.shown) fillMetrics(scores);
}

function show(blob, spec, seconds) {
  showError(null);
  const label = spec.map ? "map" : Number(spec.tau).toFixed(2);
  const shown = $("shown");
  shown.src = setUrl("shown", blob);
  shown.dataset.tau = label;
  shown.dataset.seq = String(++state.seq);
  state.shown = spec;
  const png = $("download-png");
  png.href = state.urls.shown;
  png.download = `${state.info.name}_tau${label}.png`;
  png.classList.remove("disabled");
  $("status").textContent = `shown: ${spec.map ? "painted tau map" : `tau = ${label}`} (${seconds.toFixed(2)} s)`;
  $("label-right").textContent = spec.map ? "tau map" : `tau = ${label}`;
  updateCompare();
}

function fillMetrics(scores) {
  for (const row of document.querySelectorAll("#metrics tbody tr")) {
    const name = row.dataset.metric;
    const cells = row.querySelectorAll("td");
    [scores.vs_original, scores.vs_tau1].forEach((group, i) => {
      const entry = group ? group[name] : { unavailable: "no original (opened .dpf)" };
      const cell = cells[i];
      cell.classList.toggle("na", "unavailable" in entry);
      if ("value" in entry) cell.textContent = entry.value.toFixed(name === "psnr" ? 2 : 4);
      else if (entry.identical) cell.textContent = name === "psnr" ? "identical (\u221e)" : "identical";
      else cell.textContent = `unavailable: ${entry.unavailable}`;
    });
  }
}

// --- wipe view ------------------------------------------------------------------------------------------

function updateCompare() {
  const mode = $("compare").value;
  const reference = $("reference");
  const url = mode === "original" ? state.urls.original : mode === "base" ? state.urls.base : null;
  const on = Boolean(url) && Boolean(state.info);
  reference.hidden = !on;
  $("wipe-line").hidden = !on;
  $("label-left").hidden = !on;
  $("label-right").hidden = !on;
  if (!on) return;
  if (reference.src !== url) reference.src = url;
  const cut = Number($("wipe").value);
  reference.style.clipPath = `inset(0 ${100 - cut}% 0 0)`;
  $("wipe-line").style.left = `${cut}%`;
  $("label-left").textContent = mode === "original" ? "original" : "tau = 1";
}

// --- painting a tau map: white = fidelity (tau 1), black = realism (tau 0) -----------------------------------

const canvas = $("map");
const pen = canvas.getContext("2d");
let last = null;

function resetMap(width, height) {
  canvas.width = width;
  canvas.height = height;
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, width, height);
}

function point(event) {
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
}

function stroke(event) {
  const grey = Math.round(Math.min(1, Math.max(0, Number($("brush-tau").value))) * 255);
  const radius = Number($("brush-size").value) / 2 * canvas.width / canvas.getBoundingClientRect().width;
  const [x, y] = point(event);
  pen.strokeStyle = pen.fillStyle = `rgb(${grey},${grey},${grey})`;
  pen.lineWidth = 2 * radius;
  pen.lineCap = "round";
  pen.beginPath();
  if (last) { pen.moveTo(...last); pen.lineTo(x, y); pen.stroke(); }
  pen.beginPath();
  pen.arc(x, y, radius, 0, 2 * Math.PI);
  pen.fill();
  last = [x, y];
}

canvas.addEventListener("pointerdown", (event) => { canvas.setPointerCapture(event.pointerId); last = null; stroke(event); });
canvas.addEventListener("pointermove", (event) => { if (last) stroke(event); });
canvas.addEventListener("pointerup", () => { last = null; });

// --- wiring -------------------------------------------------------------------------------------------------

let timer = null;
$("tau").addEventListener("input", () => {
  $("tau-value").textContent = Number($("tau").value).toFixed(2);
  clearTimeout(timer);
  timer = setTimeout(() => want({ tau: $("tau").value }), DEBOUNCE_MS);
});
$("use-sample").addEventListener("click", () => startSession("/api/compress", { sample: "true", quality: $("rate").value }));
$("photo").addEventListener("change", () => {
  const file = $("photo").files[0];
  if (file) startSession("/api/compress", { image: file, quality: state.config.rates.variable ? $("rate").value : null });
});
$("open-dpf").addEventListener("change", () => {
  const file = $("open-dpf").files[0];
  if (file) startSession("/api/open", { dpf: file });
});
$("rate").addEventListener("input", () => { $("rate-value").textContent = $("rate").value; });
$("rate").addEventListener("change", () => {
  if (state.info) startSession(`/api/sessions/${state.info.session}/rate`, { quality: $("rate").value });
});
$("compare").addEventListener("change", updateCompare);
$("wipe").addEventListener("input", updateCompare);
$("paint").addEventListener("change", () => { canvas.hidden = !$("paint").checked; });
$("clear-map").addEventListener("click", () => resetMap(canvas.width, canvas.height));
$("decode-map").addEventListener("click", () => canvas.toBlob((blob) => want({ map: blob }), "image/png"));

async function init() {
  try {
    state.config = await (await api("/api/config", null, "GET")).json();
  } catch (error) {
    showError(error);
    return;
  }
  const { rates } = state.config;
  $("model").textContent = `model: ${state.config.model}`;
  Object.assign($("rate"), { min: rates.min, max: rates.max, value: rates.default });
  $("rate-value").textContent = rates.default;
  $("steps").value = state.config.default_steps;
  $("steps").max = state.config.limits.max_steps;
  document.body.dataset.state = "ready";
}

init();
