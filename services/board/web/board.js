// The wallboard: the state from /api/board, kept current by the event stream (/events).
// Plain JavaScript, no build step. The token comes from the page's query (?access_token=…).
"use strict";

const params = new URLSearchParams(location.search);
const token = params.get("access_token") || "";
const withToken = (path) => path + (path.includes("?") ? "&" : "?") + "access_token=" + encodeURIComponent(token);

let skew = 0;          // service clock minus this browser's clock, in ms
let state = null;
let refreshTimer = null;
let lastSeq = null;

const el = (id) => document.getElementById(id);
const now = () => Date.now() + skew;

function text(tag, value, cls) {
  const node = document.createElement(tag);
  node.textContent = value;
  if (cls) node.className = cls;
  return node;
}

function span(ms) {
  const s = Math.max(0, Math.floor(Math.abs(ms) / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  return (h > 0 ? h + ":" + two(m) : String(m)) + ":" + two(sec);
}

function setStatus(label, kind) {
  const s = el("status");
  s.textContent = label;
  s.dataset.state = kind;
}

async function load() {
  try {
    const res = await fetch(withToken("/api/board"), { cache: "no-store" });
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      setStatus("refused: " + (body.error || res.status), "behind");
      return;
    }
    state = await res.json();
    skew = Date.parse(state.now) - Date.now();
    render();
  } catch (e) {
    setStatus("board unreachable, retrying", "behind");
  }
}

// Many events arrive together: read the state once for all of them.
function refreshSoon() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = null; load(); }, 250);
}

function renderCounts() {
  const stages = ["received", "routed", "assigned", "accepted", "reopened"];
  const head = el("counts").tHead, body = el("counts").tBodies[0];
  head.replaceChildren();
  body.replaceChildren();
  const hr = document.createElement("tr");
  ["Department", "Class", ...stages, "Open"].forEach((h) => hr.appendChild(text("th", h)));
  head.appendChild(hr);
  const rows = new Map();
  for (const c of state.counts) {
    const key = c.department_id + "|" + c.class;
    if (!rows.has(key)) rows.set(key, { name: c.department_name || "complaint centre", cls: c.class, by: {} });
    rows.get(key).by[c.stage] = (rows.get(key).by[c.stage] || 0) + c.open;
  }
  if (rows.size === 0) {
    const tr = document.createElement("tr");
    const td = text("td", "No open complaints.", "empty");
    td.colSpan = stages.length + 3;
    tr.appendChild(td);
    body.appendChild(tr);
  }
  for (const r of rows.values()) {
    const tr = document.createElement("tr");
    tr.appendChild(text("td", r.name));
    tr.appendChild(text("td", r.cls || "–", "class class-" + r.cls));
    let total = 0;
    for (const s of stages) { tr.appendChild(text("td", r.by[s] || "")); total += r.by[s] || 0; }
    tr.appendChild(text("td", total));
    body.appendChild(tr);
  }
}

function renderLines(id, lines, late) {
  const list = el(id);
  list.replaceChildren();
  if (lines.length === 0) list.appendChild(text("li", late ? "Nothing overdue." : "Nothing at risk.", "empty"));
  for (const l of lines) {
    const li = document.createElement("li");
    li.dataset.complaint = l.complaint_id;
    li.dataset.due = l.due_at || "";
    li.appendChild(text("b", l.complaint_number || l.complaint_id));
    li.appendChild(text("span", l.class, "class-" + l.class));
    li.appendChild(text("span", (l.department_name || "complaint centre") + " · " + (l.handler_name || "unassigned") + " · " + l.clock));
    li.appendChild(text("span", "", "time"));
    list.appendChild(li);
  }
}

function renderEscalations() {
  const list = el("escalations");
  list.replaceChildren();
  if (state.escalations.length === 0) list.appendChild(text("li", "None waiting.", "empty"));
  for (const e of state.escalations) {
    const li = document.createElement("li");
    li.dataset.complaint = e.complaint_id;
    li.dataset.due = e.acknowledge_by || "";
    li.appendChild(text("b", e.complaint_number || e.complaint_id));
    li.appendChild(text("span", "L" + e.level));
    li.appendChild(text("span", e.recipient_name + " · " + e.department_name));
    li.appendChild(text("span", "", "time"));
    list.appendChild(li);
  }
}

function renderRevisits() {
  const r = state.revisits;
  const rate = r.due_today > 0 ? Math.round((100 * r.done_today) / r.due_today) + "%" : "–";
  const box = el("revisits");
  box.replaceChildren();
  for (const [label, value] of [["due today", r.due_today], ["made", r.done_today], ["revisit rate", rate], ["satisfied", r.satisfied_today]]) {
    const d = text("div", value);
    d.appendChild(text("span", label));
    box.appendChild(d);
  }
}

function renderTicker() {
  const list = el("ticker");
  list.replaceChildren();
  for (const t of [...state.ticker].reverse()) addTick(t, false);
}

function addTick(t, prepend) {
  const list = el("ticker");
  const li = document.createElement("li");
  const time = t.occurred_at ? new Date(t.occurred_at).toLocaleTimeString() : "";
  li.appendChild(text("span", time + " "));
  li.appendChild(text("b", t.text || t.kind));
  if (prepend) list.prepend(li); else list.appendChild(li);
  while (list.children.length > 50) list.lastChild.remove();
}

function render() {
  renderCounts();
  renderLines("at-risk", state.at_risk, false);
  renderLines("overdue", state.overdue, true);
  renderEscalations();
  renderRevisits();
  renderTicker();
  tick();
}

// Every second: the countdowns and the lateness, against the service's clock.
function tick() {
  el("clock").textContent = new Date(now()).toLocaleString();
  for (const li of document.querySelectorAll("#at-risk li[data-due], #escalations li[data-due]")) {
    if (!li.dataset.due) continue;
    const left = Date.parse(li.dataset.due) - now();
    li.querySelector(".time").textContent = left >= 0 ? span(left) + " left" : "due " + span(left) + " ago";
  }
  for (const li of document.querySelectorAll("#overdue li[data-due]")) {
    if (!li.dataset.due) continue;
    li.querySelector(".time").textContent = span(now() - Date.parse(li.dataset.due)) + " late";
  }
}

function connect() {
  // EventSource reconnects by itself and sends Last-Event-ID; a new one starts from now
  // and reloads the state, so nothing between the two is missed.
  const source = new EventSource(withToken("/events"));
  source.onopen = () => { setStatus("live", "live"); load(); };
  source.onmessage = (m) => {
    const e = JSON.parse(m.data);
    lastSeq = e.seq;
    addTick({ text: e.text, kind: e.kind, occurred_at: e.event.occurredAt }, true);
    refreshSoon();
  };
  source.addEventListener("dropped", () => {
    setStatus("behind the stream, catching up", "behind");
  });
  source.onerror = () => setStatus("reconnecting…", "connecting");
}

load();
connect();
setInterval(tick, 1000);
