// The policy's reports, drawn where people look rather than read: bar charts in plain SVG
// from /api/reports/{daily,monthly,yearly}, and the same data as CSV. No build step.
"use strict";

const params = new URLSearchParams(location.search);
const token = params.get("access_token") || "";
let kind = params.get("report") || "daily";

const el = (id) => document.getElementById(id);
const q = (extra) => "access_token=" + encodeURIComponent(token) + extra;

function text(tag, value, cls) {
  const node = document.createElement(tag);
  node.textContent = value;
  if (cls) node.className = cls;
  return node;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// Horizontal bars: one row per key, received (and overdue inside it).
function bars(title, tallies) {
  const box = text("section", "", "panel chart");
  box.appendChild(text("h2", title));
  if (!tallies.length) { box.appendChild(text("p", "No complaints.", "empty")); return box; }
  const max = Math.max(...tallies.map((t) => t.received), 1);
  const row = 26, label = 170, width = 520;
  const w = label + width + 140, h = tallies.length * row + 8;
  const chart = svg("svg", { viewBox: "0 0 " + w + " " + h, width: "100%", role: "img" });
  tallies.forEach((t, i) => {
    const y = i * row + 4;
    const name = svg("text", { x: 0, y: y + 16, class: "axis" });
    name.textContent = t.key || "(none)";
    chart.appendChild(name);
    const bar = Math.max(2, (width * t.received) / max);
    chart.appendChild(svg("rect", { x: label, y, width: bar, height: row - 8, class: "bar" }));
    if (t.overdue) chart.appendChild(svg("rect", { x: label, y, width: (width * t.overdue) / max, height: row - 8, class: "bar late" }));
    const n = svg("text", { x: label + bar + 6, y: y + 16, class: "axis" });
    n.textContent = t.received + (t.overdue ? " (" + t.overdue + " late)" : "");
    chart.appendChild(n);
  });
  box.appendChild(chart);
  return box;
}

// Vertical bars over months.
function columns(title, points) {
  const box = text("section", "", "panel chart wide");
  box.appendChild(text("h2", title));
  if (!points.length) { box.appendChild(text("p", "No complaints.", "empty")); return box; }
  const max = Math.max(...points.map((p) => p.received), 1);
  const col = 70, height = 160;
  const chart = svg("svg", { width: points.length * col + 20, height: height + 40, role: "img" });
  points.forEach((p, i) => {
    const h = Math.max(2, (height * p.received) / max);
    chart.appendChild(svg("rect", { x: i * col + 10, y: height - h, width: col - 20, height: h, class: "bar" }));
    const v = svg("text", { x: i * col + 14, y: height - h - 4, class: "axis" });
    v.textContent = p.received;
    chart.appendChild(v);
    const m = svg("text", { x: i * col + 10, y: height + 18, class: "axis" });
    m.textContent = p.month;
    chart.appendChild(m);
  });
  box.appendChild(chart);
  return box;
}

// Each department's complaint rate T against the policy's threshold, and its band.
function rates(list) {
  const box = text("section", "", "panel chart wide");
  box.id = "rates";
  box.appendChild(text("h2", "Complaint rate T by department (complaints ÷ business volume)"));
  if (!list.length) { box.appendChild(text("p", "No complaints or business volume this month.", "empty")); return box; }
  const measured = list.filter((r) => r.rate_bp != null);
  if (measured.length) {
    const max = Math.max(...measured.map((r) => r.rate_bp), 100);
    const row = 26, label = 170, width = 520;
    const chart = svg("svg", { viewBox: "0 0 " + (label + width + 200) + " " + (measured.length * row + 8), width: "100%", role: "img" });
    measured.forEach((r, i) => {
      const y = i * row + 4;
      const name = svg("text", { x: 0, y: y + 16, class: "axis" });
      name.textContent = r.department_name;
      chart.appendChild(name);
      const bar = Math.max(2, (width * r.rate_bp) / max);
      chart.appendChild(svg("rect", { x: label, y, width: bar, height: row - 8, class: r.head_penalty_fen > 0 ? "bar late" : "bar" }));
      const n = svg("text", { x: label + bar + 6, y: y + 16, class: "axis" });
      n.textContent = r.rate_percent + "  " + r.band;
      chart.appendChild(n);
    });
    box.appendChild(chart);
  }
  box.appendChild(table(
    ["department", "complaints", "business volume", "T", "band", "head's penalty (yuan)"],
    list.map((r) => [r.department_name, r.complaints, r.business_volume || "not entered", r.rate_percent || "", r.band || "",
      r.rate_bp == null ? "" : (r.head_penalty_fen / 100).toFixed(2) + (r.head_penalty_needs_approval ? " (default; an approver chooses)" : "")])));
  return box;
}

function table(headers, rows) {
  const t = document.createElement("table");
  const hr = document.createElement("tr");
  headers.forEach((h) => hr.appendChild(text("th", h)));
  t.appendChild(hr);
  for (const r of rows) {
    const tr = document.createElement("tr");
    r.forEach((c) => tr.appendChild(text("td", c == null ? "" : c)));
    t.appendChild(tr);
  }
  return t;
}

const titles = { class: "By class", department: "By department", category: "By category", cause: "By cause (who was responsible)", channel: "By channel", customer_type: "By customer type" };

function render(report) {
  const main = el("report");
  main.replaceChildren();
  if (kind === "daily") {
    main.appendChild(bars("Received on " + report.date + " by class", report.by_class));
    main.appendChild(bars("By department", report.by_department));
    const log = text("section", "", "panel wide");
    log.appendChild(text("h2", "Complaint log, " + report.date + " (" + report.complaints.length + ")"));
    log.appendChild(table(
      ["number", "received", "class", "channel", "category", "department", "handler", "stage", "overdue"],
      report.complaints.map((c) => [c.complaint_number, c.received_at ? new Date(c.received_at).toLocaleTimeString() : "", c.class, c.channel, c.category, c.department_name, c.handler_name, c.stage, c.overdue ? "yes" : ""])));
    log.id = "daily-log";
    main.appendChild(log);
  } else if (kind === "monthly") {
    main.appendChild(columns("Complaints per month, the six months to " + report.month, report.trend));
    main.appendChild(rates(report.rates));
    for (const b of report.breakdowns) main.appendChild(bars(titles[b.dimension] || b.dimension, b.tallies));
  } else {
    const months = new Map();
    for (const d of report.departments) for (const m of d.months) months.set(m.month, (months.get(m.month) || 0) + m.received);
    main.appendChild(columns("Complaints per month, " + report.year, [...months].map(([month, received]) => ({ month, received }))));
    for (const d of report.departments) {
      const total = d.months.reduce((a, m) => ({ received: a.received + m.received, resolved: a.resolved + m.resolved, overdue: a.overdue + m.overdue, satisfied: a.satisfied + m.satisfied, dissatisfied: a.dissatisfied + m.dissatisfied }), { received: 0, resolved: 0, overdue: 0, satisfied: 0, dissatisfied: 0 });
      const box = text("section", "", "panel");
      box.appendChild(text("h2", d.department));
      box.appendChild(table(["month", "received", "resolved", "overdue", "satisfied", "dissatisfied"],
        [...d.months.map((m) => [m.month, m.received, m.resolved, m.overdue, m.satisfied, m.dissatisfied]),
         ["year", total.received, total.resolved, total.overdue, total.satisfied, total.dissatisfied]]));
      main.appendChild(box);
    }
  }
}

async function load() {
  const period = el("period").value.trim();
  const extra = period ? "&period=" + encodeURIComponent(period) : "";
  el("csv").href = "/api/reports/" + kind + "?" + q(extra + "&format=csv");
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("on", b.dataset.report === kind);
  const res = await fetch("/api/reports/" + kind + "?" + q(extra), { cache: "no-store" });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    el("report").replaceChildren(text("p", "Refused: " + (body.error || res.status), "empty"));
    return;
  }
  render(body);
}

for (const b of document.querySelectorAll("nav button")) {
  b.addEventListener("click", () => { kind = b.dataset.report; el("period").value = ""; load(); });
}
el("period").addEventListener("change", load);
el("back").href = "/?" + q("");
load();
