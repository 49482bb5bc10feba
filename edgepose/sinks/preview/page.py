"""The preview's single self-contained page (HTML, CSS and JavaScript; no external resources).

Layout contract (tests rely on it): the live picture is shown at its natural size with its top-left
corner at (16, 56) CSS pixels — a 40 px header, then 16 px of padding. Clicking it toggles
fit-to-width for frames larger than the window.
"""

from __future__ import annotations

import json

from edgepose.config import ModelConfig
from edgepose.events import EventType

#: Where the picture's top-left corner lands on the page, in CSS pixels.
IMAGE_OFFSET: tuple[int, int] = (16, 56)

_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgepose preview</title>
<style>
  * { box-sizing: border-box; }
  html, body { margin: 0; padding: 0; background: #15171a; color: #e6e6e6;
               font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
  header { height: 40px; padding: 0 16px; display: flex; align-items: center; gap: 16px;
           background: #22262b; white-space: nowrap; overflow: hidden; }
  header b { font-size: 16px; }
  .dot { width: 10px; height: 10px; border-radius: 50%; background: #c0392b; display: inline-block; }
  .dot.on { background: #2ecc71; }
  .tag { color: #9aa4ad; }
  .tag span { color: #e6e6e6; }
  main { display: flex; align-items: flex-start; gap: 16px; padding: 16px; }
  #view { flex: none; margin: 0; padding: 0; line-height: 0; }
  #video { display: block; margin: 0; padding: 0; border: 0; max-width: none; background: #000;
           min-width: 160px; min-height: 120px; cursor: zoom-in; }
  #video.fit { max-width: calc(100vw - 32px); height: auto; cursor: zoom-out; }
  aside { flex: 1; min-width: 280px; max-width: 420px; }
  h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .05em; color: #9aa4ad; margin: 0 0 6px; }
  section { background: #1d2025; border-radius: 6px; padding: 10px 12px; margin-bottom: 12px; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  td, th { padding: 2px 6px; text-align: right; }
  td:first-child, th:first-child { text-align: left; }
  th { color: #9aa4ad; font-weight: normal; }
  .big { font-size: 22px; font-weight: 600; }
  .bar { height: 8px; border-radius: 4px; background: #444; min-width: 2px; }
  .low { color: #777; }
  #banner { display: none; color: #f1c40f; }
  .alert { color: #e74c3c; font-weight: 600; }
  #snapshot { display: block; max-width: 100%; margin-bottom: 4px; }
</style>
</head>
<body>
<header>
  <b>edgepose</b>
  <span class="dot" id="live" title="event stream"></span>
  <span class="tag">delegate <span id="delegate">–</span></span>
  <span class="tag">model <span id="model">–</span></span>
  <span class="tag">runtime <span id="runtime">–</span></span>
  <span class="tag">mode <span id="mode">–</span></span>
  <span class="tag">pipeline <span id="activity">–</span></span>
  <span id="banner">reconnecting…</span>
</header>
<main>
  <div id="view"><img id="video" alt="live picture with the skeleton drawn"></div>
  <aside>
    <section>
      <h2>Answers</h2>
      <table>
        <tr><td>person</td><td id="present">–</td></tr>
        <tr><td>fallen</td><td id="fallen">–</td></tr>
        <tr><td>exercise</td><td id="exercise">–</td></tr>
        <tr><td>repetitions</td><td class="big" id="reps">–</td></tr>
      </table>
    </section>
    <section id="snapshot-box" hidden>
      <h2>Last snapshot</h2>
      <a id="snapshot-link" target="_blank"><img id="snapshot" alt="the last snapshot"></a>
      <span class="tag" id="snapshot-info"></span>
    </section>
    <section>
      <h2>Last events</h2>
      <table id="events"><tr><th>time</th><th>event</th><th></th></tr></table>
    </section>
    <section>
      <h2>Pipeline</h2>
      <table>
        <tr><td>fps</td><td class="big" id="fps">–</td></tr>
        <tr><td>frame</td><td id="frame">–</td></tr>
        <tr><td>size</td><td id="size">–</td></tr>
        <tr><td>pose score</td><td id="score">–</td></tr>
        <tr><td>people</td><td id="people">–</td></tr>
        <tr><td>dropped frames</td><td id="dropped">–</td></tr>
        <tr><td>last frame age</td><td id="age">–</td></tr>
      </table>
    </section>
    <section>
      <h2>Latency (ms)</h2>
      <table id="latency"><tr><th>stage</th><th>last</th><th>p50</th><th>p95</th></tr></table>
    </section>
    <section>
      <h2>Keypoints</h2>
      <table id="keypoints"><tr><th>name</th><th>score</th><th></th><th>x</th><th>y</th></tr></table>
    </section>
  </aside>
</main>
<script>
"use strict";
const STAGES = ["capture", "preprocess", "invoke", "postprocess", "total"];
const EVENT = /*EVENT_TYPES*/;
const token = new URLSearchParams(location.search).get("token");
const withToken = (path) => path + (token ? "?token=" + encodeURIComponent(token) : "");
const $ = (id) => document.getElementById(id);
const video = $("video");
let minScore = /*MIN_SCORE*/, pending = null, scheduled = false, lost = false, events = null, recent = [];
let snapshotKey = "";

function scoreColor(s) {
  s = Math.max(0, Math.min(1, s));
  const r = s <= 0.5 ? 255 : Math.round(255 * (1 - s) * 2);
  const g = s >= 0.5 ? 255 : Math.round(255 * s * 2);
  return "rgb(" + r + "," + g + ",0)";
}
function row(table, cells) {
  const tr = table.insertRow();
  for (const c of cells) { const td = tr.insertCell(); td.textContent = c; }
  return tr;
}
for (const stage of STAGES) { row($("latency"), [stage, "–", "–", "–"]).id = "lat-" + stage; }

function showState(st) {
  if (!st) { return; }
  $("present").textContent = st.present ? "present" : "absent";
  $("fallen").textContent = st.fallen ? "FALLEN" : "no";
  $("fallen").className = st.fallen ? "alert" : "";
  $("exercise").textContent = st.exercise || "–";
  $("reps").textContent = st.reps;
}
function eventText(e) {
  if (e.type === EVENT.FALL) { return "confidence " + e.confidence.toFixed(2); }
  if (e.type === EVENT.REP) { return e.exercise + " #" + e.count + " in " + e.duration_s.toFixed(1) + " s"; }
  if (e.type === EVENT.PERSON_LEFT) { return "in view " + e.visit_s.toFixed(1) + " s"; }
  return "";
}
function addEvents(list) {
  if (!list || !list.length) { return; }
  const key = (e) => e.type + "@" + e.ts;
  const seen = new Set(recent.map(key));
  for (const e of list) { if (!seen.has(key(e))) { seen.add(key(e)); recent.push(e); } }
  recent.sort((a, b) => b.ts - a.ts);
  recent = recent.slice(0, 10);
  const table = $("events");
  while (table.rows.length > 1) { table.deleteRow(1); }
  for (const e of recent) {
    const tr = row(table, [new Date(e.ts * 1000).toLocaleTimeString(), e.type, eventText(e)]);
    tr.className = e.type === EVENT.FALL ? "alert" : "";
  }
}
function showPose(p) {
  showState(p.state);
  $("frame").textContent = p.frame;
  $("size").textContent = p.width + "×" + p.height;
  $("score").textContent = p.score.toFixed(3);
  $("people").textContent = p.poses.filter((pose) => pose.score >= minScore).length;
  for (const stage of STAGES) {
    const v = p.latency_ms[stage];
    if (v !== undefined) { $("lat-" + stage).cells[1].textContent = v.toFixed(1); }
  }
  const table = $("keypoints");
  p.keypoints.forEach((k, i) => {
    let tr = table.rows[i + 1];
    if (!tr) {
      tr = row(table, [k.name, "", "", "", ""]);
      const bar = document.createElement("div"); bar.className = "bar"; tr.cells[2].appendChild(bar);
      tr.cells[2].style.width = "90px";
    }
    tr.className = k.score < minScore ? "low" : "";
    tr.cells[1].textContent = k.score.toFixed(2);
    const bar = tr.cells[2].firstChild;
    bar.style.width = Math.round(k.score * 100) + "%";
    bar.style.background = scoreColor(k.score);
    tr.cells[3].textContent = Math.round(k.x);
    tr.cells[4].textContent = Math.round(k.y);
  });
}
function showSnapshot(snap) {
  if (!snap || snap.id + "@" + snap.ts === snapshotKey) { return; }
  snapshotKey = snap.id + "@" + snap.ts;  // ids start again with each run
  const url = withToken("snapshot.jpg") + (token ? "&" : "?") + "n=" + snap.id + "-" + snap.ts;
  $("snapshot").src = url;
  $("snapshot-link").href = url;
  $("snapshot-info").textContent = new Date(snap.ts * 1000).toLocaleTimeString() + " · " + snap.reason +
    " · frame " + snap.frame + " · " + snap.mode;
  $("snapshot-box").hidden = false;
}
function showStats(s) {
  const st = s.stats;
  showSnapshot(s.snapshot);
  $("fps").textContent = st.fps.toFixed(1);
  $("dropped").textContent = st.dropped;
  $("age").textContent = st.frame_age_s === null ? "–" : st.frame_age_s.toFixed(2) + " s";
  for (const stage of STAGES) {
    const q = st.latency_ms[stage];
    if (!q) { continue; }
    const r = $("lat-" + stage);
    r.cells[2].textContent = q.p50.toFixed(1);
    r.cells[3].textContent = q.p95.toFixed(1);
  }
  $("delegate").textContent = s.backend.delegate;
  $("runtime").textContent = s.backend.runtime + " ×" + s.backend.threads;
  $("model").textContent = s.backend.model.split("/").pop();
  $("mode").textContent = s.mode;
  $("activity").textContent = st.mode + (st.source && st.source.state !== "ok" ? ", source " + st.source.state : "");
  minScore = s.min_score;
  addEvents(s.recent_events);
}
function schedule(p) {
  pending = p;
  if (!scheduled) {
    scheduled = true;
    requestAnimationFrame(() => { scheduled = false; if (pending) { showPose(pending); pending = null; } });
  }
}
function setLive(on) {
  $("live").className = on ? "dot on" : "dot";
  $("banner").style.display = on ? "none" : "inline";
}

function connectStream() {
  const sep = token ? "&" : "?";
  video.src = withToken("stream.mjpg") + sep + "t=" + Date.now();
}
video.onerror = () => { setTimeout(connectStream, 1000); };
video.onclick = () => video.classList.toggle("fit");

function connectEvents() {
  events = new EventSource(withToken("events"));
  events.onopen = () => { setLive(true); if (lost) { lost = false; connectStream(); } };
  events.onmessage = (e) => { const p = JSON.parse(e.data); addEvents(p.events); schedule(p); };
  events.addEventListener("stats", (e) => showStats(JSON.parse(e.data)));
  events.onerror = () => {
    setLive(false);
    lost = true;
    if (events.readyState === EventSource.CLOSED) { events.close(); setTimeout(connectEvents, 2000); }
  };
}
fetch(withToken("pose")).then((r) => r.ok ? r.json() : null).then((p) => {
  if (p) { showStats(p); showPose(p); }
}).catch(() => {});
connectEvents();
connectStream();
</script>
</body>
</html>
"""

#: The event type names the page tells apart, from :class:`~edgepose.events.EventType`.
_EVENT_TYPES = json.dumps({event.name: event.value for event in EventType})
PAGE: bytes = (
    _HTML.replace("/*EVENT_TYPES*/", _EVENT_TYPES).replace("/*MIN_SCORE*/", repr(ModelConfig.min_score)).encode("utf-8")
)
