// lb status page: polls /stats.json every second, keeps the last minutes of
// rates in memory and redraws the tables and the canvas charts. No external
// code, no build step.
"use strict";

const POLL_MS = 1000;
const HISTORY = 300; // samples kept per series (5 minutes at 1/s)
const COLORS = ["#3a7bd5", "#e0793a", "#2f8a4c", "#9b59b6", "#c23b3b", "#16a0a0", "#8a6d3b", "#555"];
const GLOBAL_CHARTED = ["conntrack_hit", "conntrack_miss", "non_syn_miss", "tx", "redirect"];

const history = new Map(); // series key -> array of numbers (oldest first)

function record(key, value) {
  let h = history.get(key);
  if (!h) {
    h = [];
    history.set(key, h);
  }
  h.push(value);
  if (h.length > HISTORY) h.shift();
  return h;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function rate(v) {
  if (v === null || v === undefined) return "–";
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(1) + "G";
  if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
  return v.toFixed(1);
}

function hostPort(vip, port) {
  const host = vip.includes(":") ? "[" + vip + "]" : vip;
  return port === 0 ? host + ":*" : host + ":" + port;
}

// Draws `series` ([{values, color}]) on `canvas`, sharing one y scale.
function draw(canvas, series) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  let max = 0;
  for (const s of series) for (const v of s.values) max = Math.max(max, v);
  const top = max > 0 ? max * 1.1 : 1;
  const big = h > 40;
  if (big) {
    ctx.fillStyle = "#5b6670";
    ctx.font = "11px sans-serif";
    ctx.fillText(rate(top) + "/s", 4, 12);
    ctx.fillText("-" + Math.round(HISTORY * POLL_MS / 60000) + " min", 4, h - 4);
  }
  let points = 0;
  for (const s of series) {
    const n = s.values.length;
    if (n === 0) continue;
    ctx.strokeStyle = s.color;
    ctx.lineWidth = big ? 1.5 : 1;
    ctx.beginPath();
    s.values.forEach((v, i) => {
      const x = w - (n - 1 - i) * (w / (HISTORY - 1)) - 1;
      const y = h - 1 - (v / top) * (h - 2);
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.stroke();
    points += n;
  }
  canvas.dataset.points = String(points);
}

function colorLegend(container, items) {
  container.replaceChildren(...items.map(([name, color]) => {
    const i = el("i");
    i.style.background = color;
    return el("span", {}, i, name);
  }));
}

function stateBadge(state) {
  const cls = state === "active" ? "ok" : state === "down" ? "bad" : "warn";
  return el("span", { class: "badge " + cls }, state);
}

function shareBar(share, weightShare) {
  const bar = el("span", { class: "sharebar", title: "table share (bar) against weight share (mark)" });
  const fill = el("i");
  fill.style.width = (share * 100).toFixed(1) + "%";
  const mark = el("b");
  mark.style.left = (weightShare * 100).toFixed(1) + "%";
  bar.append(fill, mark);
  return bar;
}

function renderService(svc) {
  const key = "svc:" + svc.name;
  const sec = el("div", { class: "service", "data-service": svc.name });
  const flags = [];
  if (svc.panic) flags.push(el("span", { class: "badge bad" }, "PANIC"));
  if (svc.table_size === 0) flags.push(el("span", { class: "badge bad" }, "no backend"));
  sec.append(el("h2", {},
    "service " + svc.name + " ",
    el("span", { class: "meta" },
      hostPort(svc.vip, svc.port) + "/" + svc.protocol + " · table " + svc.table_size +
      " · " + svc.packets + " packets · " + rate(svc.rate && svc.rate.packets_per_s) + " pkt/s · " +
      svc.no_backend + " no-backend drops" +
      (svc.fingerprint !== undefined && svc.fingerprint !== null ? " · table fingerprint " + svc.fingerprint : "") + " "),
    ...flags));

  const canvas = el("canvas", { class: "chart", width: 900, height: 120, "data-chart": key });
  const totalWeight = svc.backends
    .filter((b) => b.state === "active")
    .reduce((a, b) => a + b.weight, 0);
  const rows = [];
  const series = [];
  const legendItems = [];
  svc.backends.forEach((b, i) => {
    const color = COLORS[i % COLORS.length];
    const bkey = key + "|" + b.address;
    const pps = record(bkey + "|pps", b.rate ? b.rate.packets_per_s : 0);
    record(bkey + "|fps", b.rate ? b.rate.new_flows_per_s : 0);
    series.push({ values: pps, color });
    legendItems.push([b.address, color]);
    const spark = el("canvas", { class: "spark", width: 120, height: 22 });
    const weightShare = b.state === "active" && totalWeight > 0 ? b.weight / totalWeight : 0;
    rows.push({ spark, values: history.get(bkey + "|fps"), color });
    const tr = el("tr", { class: "backend state-" + b.state, "data-service": svc.name, "data-backend": b.address },
      el("td", { class: "address" }, b.address),
      el("td", { class: "num" }, b.id),
      el("td", { class: "state" }, stateBadge(b.state)),
      el("td", { class: "num weight" }, b.weight),
      el("td", { class: "num share" }, (b.share * 100).toFixed(1) + "%", shareBar(b.share, weightShare)),
      el("td", { class: "num packets" }, b.packets),
      el("td", { class: "num pps" }, rate(b.rate && b.rate.packets_per_s)),
      el("td", { class: "num new-flows" }, b.new_flows),
      el("td", { class: "num fps" }, rate(b.rate && b.rate.new_flows_per_s)),
      el("td", {}, spark));
    rows[rows.length - 1].tr = tr;
  });
  const table = el("table", { class: "backends" },
    el("thead", {}, el("tr", {},
      el("th", {}, "backend"), el("th", { class: "num" }, "id"), el("th", {}, "state"),
      el("th", { class: "num" }, "weight"), el("th", { class: "num" }, "share"),
      el("th", { class: "num" }, "packets"), el("th", { class: "num" }, "pkt/s"),
      el("th", { class: "num" }, "new flows"), el("th", { class: "num" }, "flows/s"),
      el("th", {}, "new flows, last minutes"))),
    el("tbody", {}, ...rows.map((r) => r.tr)));
  const leg = el("div", { class: "legend" });
  colorLegend(leg, legendItems);
  sec.append(canvas, leg, table);
  return { sec, draw: () => {
    draw(canvas, series);
    for (const r of rows) draw(r.spark, [{ values: r.values, color: r.color }]);
  } };
}

function renderGlobal(stats) {
  const body = document.querySelector("#global tbody");
  const sparks = [];
  body.replaceChildren(...Object.entries(stats.global).map(([name, count]) => {
    const per = stats.global_rate ? stats.global_rate[name] : null;
    const values = record("global:" + name, per || 0);
    const spark = el("canvas", { class: "spark", width: 120, height: 22 });
    sparks.push([spark, values]);
    return el("tr", { class: "counter", "data-counter": name },
      el("td", {}, name),
      el("td", { class: "num count" }, count),
      el("td", { class: "num per-s" }, rate(per)),
      el("td", {}, spark));
  }));
  for (const [spark, values] of sparks) draw(spark, [{ values, color: COLORS[0] }]);
  const charted = GLOBAL_CHARTED.map((name, i) => ({
    name, values: history.get("global:" + name) || [], color: COLORS[i % COLORS.length],
  }));
  draw(document.getElementById("global-chart"), charted);
  colorLegend(document.getElementById("global-legend"), charted.map((s) => [s.name + "/s", s.color]));
}

function render(stats) {
  document.getElementById("iface").textContent = stats.iface;
  const summary = document.getElementById("summary");
  const attached = stats.attached
    ? el("span", { class: "badge ok", id: "attached" }, "attached" + (stats.xdp_mode ? " (" + stats.xdp_mode + ")" : ""))
    : el("span", { class: "badge bad", id: "attached" }, "NOT attached");
  const parts = [attached];
  if (stats.applied_at_unix_ms) {
    let apply = " · last apply " + new Date(stats.applied_at_unix_ms).toISOString().replace("T", " ").slice(0, 19) + " UTC";
    if (stats.last_apply_s !== null && stats.last_apply_s !== undefined) apply += " in " + (stats.last_apply_s * 1000).toFixed(1) + " ms";
    parts.push(apply);
  } else {
    parts.push(" · no applied state (only global counters)");
  }
  if (stats.draining === true) parts.push(" ", el("span", { class: "badge warn", id: "draining" }, "DRAINING"));
  if (Array.isArray(stats.vips) && stats.vips.length > 0) {
    parts.push(" · VIPs ");
    for (const v of stats.vips) {
      const title = v.reason ? String(v.reason) : "";
      const badge = el("span", { class: "badge " + (v.announced ? "ok" : "bad"), title, "data-vip": v.vip },
        v.vip + (v.announced ? " announced" : " withdrawn"));
      parts.push(badge, " ");
    }
  }
  parts.push(" · updated " + new Date().toLocaleTimeString());
  summary.replaceChildren(...parts);
  const rendered = stats.services.map(renderService);
  document.getElementById("services").replaceChildren(...rendered.map((r) => r.sec));
  for (const r of rendered) r.draw();
  renderGlobal(stats);
}

let polls = 0;

async function poll() {
  const error = document.getElementById("error");
  try {
    const res = await fetch("/stats.json", { cache: "no-store" });
    const text = await res.text();
    if (!res.ok) throw new Error(res.status + " " + text.trim());
    render(JSON.parse(text));
    error.hidden = true;
    polls += 1;
    document.body.dataset.polls = String(polls);
  } catch (e) {
    error.textContent = "cannot read /stats.json: " + e.message + " (retrying every second)";
    error.hidden = false;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
