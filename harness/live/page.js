// The live view's client: one EventSource on /events (a snapshot, then every change as it happens), rows and
// progress bars updated in place, a board's serial tail and MQTT transcript on click, the lab's actions as
// JSON POSTs. No framework; device-supplied text only ever goes in through textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const SERIAL_KEEP = 400, MQTT_KEEP = 300, NOTES_KEEP = 200, LATENCY_KEEP = 5000;
const FINAL = new Set(["succeeded", "failed", "rejected", "cancelled", "rolled_back"]);

// What a test reads back (selenium): for every board event, the ms from the harness getting the MQTT
// message (the server's t_ms, wall clock) to the row being redrawn here (Date.now(), the same clock).
window.hilLive = { latencies: [], events: 0, snapshots: 0, lastSeq: 0, connected: false };

const rows = new Map();        // device id -> {tr, board}
const logs = new Map();        // device id -> {serial: [], mqtt: []} entries with seq
const selected = new Set();
let shown = null;              // the device whose logs are open
let info = {};
let artifacts = [];

function cell(tr, name) { return tr.querySelector(`td.${name}`); }

function makeRow(id) {
  const tr = document.createElement("tr");
  tr.dataset.device = id;
  tr.innerHTML = '<td class="select"><input type="checkbox"></td><td class="device"><code></code><span class="name">' +
    '</span></td><td class="version"></td><td class="slot"></td><td class="ota_state"></td><td class="online"></td>' +
    '<td class="progress"><div class="bar"><div class="fill"></div><span class="label"></span></div></td>' +
    '<td class="outcome"></td><td class="reset_reason"></td>';
  const box = tr.querySelector("input");
  box.checked = selected.has(id);
  box.addEventListener("click", (e) => {
    e.stopPropagation();
    if (box.checked) selected.add(id); else selected.delete(id);
  });
  tr.addEventListener("click", () => showLogs(id));
  $("boards").tBodies[0].appendChild(tr);
  $("no-boards").hidden = true;
  return tr;
}

function renderBoard(board) {
  let entry = rows.get(board.device_id);
  if (!entry) { entry = { tr: makeRow(board.device_id) }; rows.set(board.device_id, entry); }
  entry.board = board;
  const tr = entry.tr;
  cell(tr, "device").querySelector("code").textContent = board.device_id;
  cell(tr, "device").querySelector(".name").textContent = board.name && board.name !== board.device_id ? board.name : "";
  cell(tr, "version").textContent = board.version ?? "";
  cell(tr, "slot").textContent = board.slot ?? "";
  cell(tr, "ota_state").textContent = board.ota_state ?? "";
  const online = cell(tr, "online");
  online.textContent = board.online === null ? "?" : board.online ? "online" : "offline";
  online.className = "online " + (board.online === null ? "" : board.online ? "online-yes" : "online-no");
  const bar = cell(tr, "progress").querySelector(".bar");
  const percent = board.percent ?? (board.ota && FINAL.has(board.ota) ? 100 : 0);
  bar.className = "bar " + (board.ota ?? "");
  bar.dataset.percent = board.percent ?? "";
  bar.querySelector(".fill").style.width = `${board.ota ? percent : 0}%`;
  let label = "";
  if (board.ota) {
    label = `${board.request_id || "-"} ${board.ota}`;
    if (board.percent !== null && !FINAL.has(board.ota)) label += ` ${board.percent}%`;
    if (board.bytes !== null && board.ota === "downloading") label += `  ${Math.round(board.bytes / 1024)} KB`;
  }
  bar.querySelector(".label").textContent = label;
  const outcome = cell(tr, "outcome");
  outcome.textContent = board.last_outcome ?? "";
  outcome.className = "outcome " + (board.last_outcome ? "outcome-" + board.last_outcome.split(" ")[0] : "");
  cell(tr, "reset_reason").textContent = board.reset_reason ?? "";
}

function clearBoards() {
  rows.clear(); logs.clear(); selected.clear();
  $("boards").tBodies[0].replaceChildren();
  $("no-boards").hidden = false;
  closeLogs();
}

// --- logs of one board --------------------------------------------------------------------------------

function logOf(id) {
  if (!logs.has(id)) logs.set(id, { serial: [], mqtt: [] });
  return logs.get(id);
}

function keep(list, entry, limit) {
  if (list.length && list[list.length - 1].seq >= entry.seq) {
    if (list.some((e) => e.seq === entry.seq)) return false;
    list.push(entry); list.sort((a, b) => a.seq - b.seq);
  } else {
    list.push(entry);
  }
  if (list.length > limit) list.splice(0, list.length - limit);
  return true;
}

function lineOf(kind, e) {
  const t = new Date(e.t_ms).toISOString().slice(11, 23);
  return kind === "serial" ? `${t} ${e.text}` : `${t} ${e.topic}${e.retained ? " (retained)" : ""} ${e.text}`;
}

function appendLine(pre, text) {
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.appendChild(document.createTextNode(text + "\n"));
  while (pre.childNodes.length > SERIAL_KEEP) pre.removeChild(pre.firstChild);
  if (atEnd) pre.scrollTop = pre.scrollHeight;
}

function renderLogs() {
  const log = logOf(shown);
  for (const kind of ["serial", "mqtt"]) {
    const pre = $(kind);
    pre.textContent = log[kind].map((e) => lineOf(kind, e)).join("\n") + (log[kind].length ? "\n" : "");
    pre.scrollTop = pre.scrollHeight;
  }
}

async function showLogs(id) {
  shown = id;
  for (const [other, entry] of rows) entry.tr.classList.toggle("shown", other === id);
  $("details").hidden = false;
  $("details-id").textContent = id;
  renderLogs();
  try {
    const response = await fetch(`/api/boards/${encodeURIComponent(id)}`);
    if (!response.ok || shown !== id) return;
    const data = await response.json();
    const log = logOf(id);
    data.serial.forEach((e) => keep(log.serial, e, SERIAL_KEEP));
    data.mqtt.forEach((e) => keep(log.mqtt, e, MQTT_KEEP));
    renderLogs();
  } catch (err) { /* the stream's entries are shown anyway */ }
}

function closeLogs() {
  shown = null;
  $("details").hidden = true;
  for (const entry of rows.values()) entry.tr.classList.remove("shown");
}

function onLogEntry(kind, e) {
  const fresh = keep(logOf(e.device_id)[kind], e, kind === "serial" ? SERIAL_KEEP : MQTT_KEEP);
  if (fresh && shown === e.device_id) appendLine($(kind), lineOf(kind, e));
}

// --- the rest of the page -----------------------------------------------------------------------------

function renderInfo() {
  const parts = [];
  if (info.target) parts.push(`target ${info.target}`);
  if (info.broker) parts.push(`broker ${info.broker}`);
  if (info.base_version) parts.push(`base ${info.base_version}`);
  if (info.test) parts.push(`test ${info.test}`);
  $("info").textContent = parts.join("  ·  ");
  $("actions").hidden = !info.actions;
  const variant = $("variant");
  if (info.variants && variant.options.length !== info.variants.length) {
    variant.replaceChildren(...info.variants.map((v) => new Option(v, v)));
  }
}

function renderArtifacts(list) {
  const before = artifacts.length;
  artifacts = list;
  const select = $("artifact");
  const current = select.value;
  select.replaceChildren(...(list.length ? [] : [new Option("(none yet)", "")]),
    ...list.map((a) => new Option(`#${a.id} ${a.name} (${a.version ?? "?"}, ${Math.round(a.size / 1024)} KB)`, a.id)));
  select.value = list.length > before ? String(list[list.length - 1].id) : current;
}

function note(e) {
  const li = document.createElement("li");
  li.className = e.level || "info";
  const time = document.createElement("time");
  time.textContent = new Date(e.t_ms).toLocaleTimeString();
  li.append(time, document.createTextNode(e.text));
  const list = $("notes");
  list.prepend(li);
  while (list.childNodes.length > NOTES_KEEP) list.removeChild(list.lastChild);
}

const scenarios = new Map();
function renderScenario(s) {
  let li = scenarios.get(s.nodeid);
  if (!li) { li = document.createElement("li"); scenarios.set(s.nodeid, li); $("scenarios").appendChild(li); }
  li.className = s.outcome;
  li.dataset.nodeid = s.nodeid;
  li.textContent = `${s.nodeid} — ${s.outcome}${s.duration != null ? ` (${s.duration.toFixed(1)} s)` : ""}`;
  $("scenarios-section").hidden = false;
  const counts = {};
  for (const item of scenarios.values()) counts[item.className] = (counts[item.className] || 0) + 1;
  $("scenario-counts").textContent = Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ");
}

function snapshot(ev) {
  clearBoards();
  scenarios.clear(); $("scenarios").replaceChildren(); $("scenarios-section").hidden = true;
  $("notes").replaceChildren();
  info = ev.info; document.title = ev.title; $("title").textContent = ev.title;
  renderInfo();
  ev.boards.forEach(renderBoard);
  ev.scenarios.forEach(renderScenario);
  artifacts = []; renderArtifacts(ev.artifacts);
  ev.notes.forEach(note);
  window.hilLive.snapshots += 1;
}

function handle(ev) {
  switch (ev.type) {
    case "snapshot": snapshot(ev); break;
    case "board":
      renderBoard(ev.board);
      window.hilLive.latencies.push(Date.now() - ev.t_ms);
      if (window.hilLive.latencies.length > LATENCY_KEEP) window.hilLive.latencies.shift();
      break;
    case "boards_cleared": clearBoards(); break;
    case "serial": onLogEntry("serial", ev); break;
    case "mqtt": onLogEntry("mqtt", ev); break;
    case "note": note(ev); break;
    case "info": info = ev.info; renderInfo(); break;
    case "artifacts": renderArtifacts(ev.artifacts); break;
    case "scenarios": scenarios.clear(); $("scenarios").replaceChildren(); ev.scenarios.forEach(renderScenario); break;
    case "scenario": renderScenario(ev.scenario); break;
  }
  window.hilLive.events += 1;
  window.hilLive.lastSeq = ev.seq;
}

function connect() {
  const source = new EventSource("/events");
  source.onopen = () => { $("conn").textContent = "live"; $("conn").className = "conn up"; window.hilLive.connected = true; };
  source.onerror = () => {
    $("conn").textContent = "reconnecting"; $("conn").className = "conn down"; window.hilLive.connected = false;
  };
  source.onmessage = (message) => handle(JSON.parse(message.data));
}

// --- actions ------------------------------------------------------------------------------------------

function result(text, error) {
  const el = $("action-result");
  el.textContent = text;
  el.className = error ? "error" : "";
}

async function post(path, body, contentType = "application/json") {
  try {
    const response = await fetch(path, { method: "POST", headers: { "Content-Type": contentType },
      body: contentType === "application/json" ? JSON.stringify(body) : body });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const why = response.status === 413 ? "the file is larger than the 8 MB the lab takes" : `HTTP ${response.status}`;
      result(data.error || why, true);
      return null;
    }
    return data;
  } catch (err) {
    result(`the harness did not answer: ${err}`, true);
    return null;
  }
}

function chosenDevices(which) {
  if (which === "all") return "all";
  const ids = [...selected].filter((id) => rows.has(id));
  if (!ids.length) { result("select at least one board (the checkboxes on the left)", true); return null; }
  return ids;
}

function artifactId() {
  const value = $("artifact").value;
  if (!value) { result("upload an image or use a built one first", true); return null; }
  return Number(value);
}

$("upload").addEventListener("click", async () => {
  const file = $("file").files[0];
  if (!file) { result("choose an image file first", true); return; }
  result(`uploading ${file.name}...`);
  const data = await post(`/api/upload?name=${encodeURIComponent(file.name)}`, file, "application/octet-stream");
  if (data) result(`image #${data.id}: ${data.name}, version ${data.version}`);
});

$("build").addEventListener("click", async () => {
  result("building...");
  const data = await post("/api/upload", { variant: $("variant").value, version: $("version").value });
  if (data) result(`image #${data.id}: ${data.name}`);
});

for (const which of ["selected", "all"]) {
  $(`update-${which}`).addEventListener("click", async () => {
    const devices = chosenDevices(which), artifact = artifactId();
    if (devices === null || artifact === null) return;
    const data = await post("/api/update", { artifact, devices, force: $("force").checked });
    if (data) result(`update ${data.request_id} sent to ${data.devices.length} board(s)`);
  });
  $(`cancel-${which}`).addEventListener("click", async () => {
    const devices = chosenDevices(which);
    if (devices === null) return;
    const data = await post("/api/cancel", { devices });
    if (data) result(`cancel sent to ${data.devices.length} board(s)${data.rollout_aborted ? "; rollout aborted" : ""}`);
  });
}

$("rollout").addEventListener("click", async () => {
  const artifact = artifactId();
  if (artifact === null) return;
  const devices = selected.size ? chosenDevices("selected") : "all";
  const steps = $("steps").value.split(/[ ,]+/).filter(Boolean).map(Number);
  const maxInFlight = $("max-in-flight").value ? Number($("max-in-flight").value) : null;
  const data = await post("/api/rollout", { artifact, devices, canary: Number($("canary").value || 0), steps,
    max_in_flight: maxInFlight });
  if (data) result(`${data.job_id}: cohorts ${data.cohorts.join(", ")}`);
});

$("select-all").addEventListener("change", (e) => {
  for (const [id, entry] of rows) {
    entry.tr.querySelector("input").checked = e.target.checked;
    if (e.target.checked) selected.add(id); else selected.delete(id);
  }
});
$("details-close").addEventListener("click", closeLogs);

connect();
