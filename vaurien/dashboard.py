"""The live dashboard: one page served at ``/`` by the control API.

The page is static -- it holds no data, only HTML, CSS and a script, all
inline (nothing is fetched from another site) -- and it reads and drives
the proxy through the control API itself, with the same checks as every
other client: ``GET /group`` (the proxies of the process; Toxiproxy's
``GET /proxies`` refuses browsers), ``GET /proxy`` (behavior, options,
state), ``/handlers`` and ``/stats`` once a second, ``PUT /behavior`` and
``PUT /proxy`` for its buttons. When the process holds several named
proxies (``[proxy:NAME]`` sections), the page lists them all (name,
listen, upstream, enabled, connections open) and shows and drives the one
picked there:
all its reads and buttons then go to ``/proxies/NAME/...``. With one
proxy the list is hidden and the top-level routes are used.

With ``--http-token``, the page asks for the token and sends it as
``Authorization: Bearer TOKEN`` on each of its requests; it keeps it in
the tab's ``sessionStorage`` (gone when the tab closes), and takes it
from the address too (``http://localhost:8080/#token=TOKEN``, removed
from the address bar at once; the part after ``#`` never reaches a
server).

:data:`HEADERS` go with the page: a Content-Security-Policy that lets
only this page's own script and style run and only the API's own origin
be fetched, and no framing (so that another site cannot overlay its
buttons).
"""
import base64
import hashlib

__all__ = ['PAGE', 'HEADERS', 'CONTENT_TYPE']

CONTENT_TYPE = 'text/html; charset=utf-8'

_STYLE = """
:root{--fg:#1d2126;--muted:#5f6b77;--line:#e3e6ea;--bg:#f6f7f9;--ok:#1a7f37;
 --down:#b42318;--accent:#2458b3}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;
 color:var(--fg);background:var(--bg)}
header{display:flex;align-items:center;gap:14px;padding:12px 20px;
 background:#fff;border-bottom:1px solid var(--line)}
header h1{font-size:18px;margin:0}
.pill{padding:2px 10px;border-radius:999px;font-weight:600;font-size:12px;
 color:#fff;background:var(--muted)}
.pill.up{background:var(--ok)}.pill.down{background:var(--down)}
.where{color:var(--muted)}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(330px,1fr));
 gap:14px;padding:14px 20px;max-width:1280px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;
 padding:12px 14px}
section.wide{grid-column:1/-1}
h2{font-size:14px;margin:0 0 8px;color:var(--muted);text-transform:uppercase;
 letter-spacing:.04em}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{min-width:110px;padding:6px 10px;border:1px solid var(--line);
 border-radius:6px}
.card b{display:block;font-size:22px;font-variant-numeric:tabular-nums}
.card span{color:var(--muted);font-size:12px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:3px 6px;border-bottom:1px solid var(--line);
 font-variant-numeric:tabular-nums;white-space:nowrap}
th{color:var(--muted);font-weight:600;font-size:12px}
code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace}
input,select,textarea,button{font:inherit}
input,select,textarea{border:1px solid #c6ccd3;border-radius:5px;
 padding:4px 6px}
textarea{width:100%;min-height:56px;font:13px ui-monospace,monospace}
button{border:1px solid var(--accent);background:var(--accent);color:#fff;
 border-radius:5px;padding:4px 12px;cursor:pointer}
button.plain{background:#fff;color:var(--accent)}
button.danger{border-color:var(--down);background:var(--down)}
.row{display:flex;gap:8px;align-items:center;flex-wrap:wrap;margin:6px 0}
.msg{min-height:1.4em;color:var(--muted)}.msg.error{color:var(--down)}
.legend{margin:2px 0;color:var(--muted)}
.legend span{margin-right:12px;white-space:nowrap;color:var(--fg)}
h3{font-size:13px;margin:12px 0 0;font-weight:600}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;
 margin-right:4px}
svg{display:block;width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:#5f6b77}
.hidden{display:none}
tr.current td{font-weight:600}
#token-bar{background:#fff7e6;border-bottom:1px solid #f3d19e;
 padding:10px 20px}
"""

_BODY = """
<header>
 <h1>Vaurien</h1>
 <span id="state" class="pill">...</span>
 <span class="where" id="where"></span>
 <span class="msg error" id="read-msg"></span>
</header>
<div id="token-bar" class="hidden">
 <form id="token-form" class="row">
  <label for="token">This proxy needs its control token (--http-token):</label>
  <input id="token" type="password" autocomplete="off" size="28">
  <button type="submit">Use it</button>
  <span class="msg" id="token-msg"></span>
 </form>
</div>
<main>
 <section class="wide hidden" id="proxies-box">
  <h2>Proxies</h2>
  <table><thead><tr><th>name</th><th>listens on</th><th>upstream</th>
   <th>enabled</th><th>connections open</th><th></th></tr>
  </thead><tbody id="proxies"></tbody></table>
 </section>
 <section class="wide">
  <h2>Traffic</h2>
  <div class="cards">
   <div class="card"><span>connections open</span><b id="open">-</b></div>
   <div class="card"><span>connections in all</span><b id="opened">-</b></div>
   <div class="card"><span>picks/s</span><b id="picks-rate">-</b></div>
   <div class="card"><span>faults/s</span><b id="faults-rate">-</b></div>
   <div class="card"><span>picks in all</span><b id="picks">-</b></div>
   <div class="card"><span>faults in all</span><b id="faults">-</b></div>
   <div class="card"><span>hung</span><b id="hung">-</b></div>
  </div>
  <h3>Picks per second</h3>
  <p class="legend" id="picks-legend"></p>
  <svg id="picks-chart" viewBox="0 0 900 120" role="img"
   aria-label="picks per second, the last minute"></svg>
  <h3>Faults per second, by effect</h3>
  <p class="legend" id="faults-legend"></p>
  <svg id="faults-chart" viewBox="0 0 900 160" role="img"
   aria-label="faults per second by effect, the last minute"></svg>
 </section>
 <section>
  <h2>Proxy</h2>
  <table><tbody id="proxy"></tbody></table>
  <div class="row">
   <button id="down" class="danger">Take the service down</button>
   <button id="up" class="plain">Bring it up</button>
  </div>
 </section>
 <section>
  <h2>Behavior</h2>
  <p><code id="behavior">-</code></p>
  <table><thead><tr><th>handler</th><th>option</th><th>value</th></tr>
  </thead><tbody id="options"></tbody></table>
  <form id="use-form" class="row">
   <label for="handler">All the traffic to</label>
   <select id="handler"></select>
   <button id="use" type="submit">Use</button>
  </form>
  <form id="mix-form">
   <div class="row">
    <label for="mix">Mix</label>
    <input id="mix" size="26" placeholder="20:delay,10:error">
   </div>
   <label for="mix-options">Options, one NAME.OPTION=VALUE a line</label>
   <textarea id="mix-options" placeholder="delay.sleep=0.2"></textarea>
   <div class="row"><button id="apply" type="submit">Apply</button></div>
  </form>
  <p class="msg" id="msg"></p>
 </section>
 <section>
  <h2>Effects per handler</h2>
  <table><thead><tr><th>handler</th><th>effect</th><th>count</th></tr>
  </thead><tbody id="effects"></tbody></table>
 </section>
 <section class="wide">
  <h2>Last faults</h2>
  <table><thead><tr><th>time</th><th>connection</th><th>client</th>
   <th>direction</th><th>handler</th><th>effect</th><th>seconds</th></tr>
  </thead><tbody id="recent"></tbody></table>
 </section>
</main>
"""

_SCRIPT = r"""
"use strict";
const COLOURS = {delayed: "#f0a030", throttled: "#d4a800", errored: "#d7301f",
  corrupted: "#f16913", cut: "#6a3d9a", reset: "#c2185b", hung: "#1f78b4",
  failed: "#222222", handled: "#8c8c8c"};
const NOT_FAULTS = new Set(["passed", "none"]);
const WINDOW = 60;            // seconds shown by the chart
const samples = [];           // {t, picks, effects: {effect: count}}
let token = sessionStorage.getItem("vaurien-token") || "";
let handlersLoaded = false;
// The proxy the page shows and drives: null while the process has one
// (its routes are the top-level ones), else a name from GET /proxies.
let current = null;

function route(path) {
  return current === null ? path :
    "/proxies/" + encodeURIComponent(current) + path;
}

function $(id) { return document.getElementById(id); }

function takeTokenFromAddress() {
  const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (match) {
    token = decodeURIComponent(match[1]);
    sessionStorage.setItem("vaurien-token", token);
    history.replaceState(null, "", location.pathname + location.search);
  }
}

async function api(method, path, body) {
  const headers = {};
  if (token) headers.Authorization = "Bearer " + token;
  const init = {method: method, headers: headers, cache: "no-store"};
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const kind = response.headers.get("Content-Type") || "";
  const data = kind.startsWith("application/json") ?
    await response.json() : await response.text();
  if (response.status === 401) {
    $("token-bar").classList.remove("hidden");
    throw new Error("the control token is missing or wrong");
  }
  if (!response.ok) {
    const errors = (data && data.errors) || [];
    throw new Error(errors.map(e => e.description).join("; ") ||
                    "HTTP " + response.status);
  }
  return data;
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows.map(values => {
    const tr = document.createElement("tr");
    values.forEach(v => cell(tr, v));
    return tr;
  }));
}

function say(text, error) {
  const msg = $("msg");
  msg.textContent = text;
  msg.classList.toggle("error", !!error);
}

function showProxy(state) {
  const pill = $("state");
  pill.textContent = state.enabled ? "up" : "down";
  pill.className = "pill " + (state.enabled ? "up" : "down");
  $("where").textContent = (current === null ? "" : current + ": ") +
    state.address + " \u2192 " + state.backend;
  fill($("proxy"), [...(current === null ? [] : [["proxy", current]]),
                    ["listens on", state.address],
                    ["backend", state.backend],
                    ["behavior", state.behavior],
                    ["connections open", String(state.connections)],
                    ["process", String(state.pid)]]);
  $("down").disabled = !state.enabled;
  $("up").disabled = state.enabled;
}

function showBehavior(state) {
  $("behavior").textContent = state.behavior;
  const rows = [];
  for (const [name, values] of Object.entries(state.options || {})) {
    const keys = Object.keys(values).sort();
    if (!keys.length) rows.push([name, "(defaults)", ""]);
    for (const key of keys) rows.push([name, key, String(values[key])]);
  }
  fill($("options"), rows);
}

function totals(stats) {
  let picks = 0;
  for (const [, , count] of stats.picks) picks += count;
  const effects = {};
  for (const [, effect, count] of stats.effects) {
    effects[effect] = (effects[effect] || 0) + count;
  }
  return {picks: picks, effects: effects};
}

function faultsIn(effects) {
  let sum = 0;
  for (const [effect, count] of Object.entries(effects)) {
    if (!NOT_FAULTS.has(effect)) sum += count;
  }
  return sum;
}

function rate(now, before, get) {
  const dt = now.t - before.t;
  return dt > 0 ? Math.max(0, (get(now) - get(before)) / dt) : 0;
}

function showStats(stats) {
  const now = Object.assign({t: performance.now() / 1000}, totals(stats));
  samples.push(now);
  while (samples.length && now.t - samples[0].t > WINDOW + 2) samples.shift();
  $("open").textContent = stats.open;
  $("opened").textContent = stats.opened;
  $("hung").textContent = stats.hung;
  $("picks").textContent = now.picks;
  $("faults").textContent = faultsIn(now.effects);
  if (samples.length > 1) {
    const before = samples[samples.length - 2];
    $("picks-rate").textContent = rate(now, before, s => s.picks).toFixed(1);
    $("faults-rate").textContent =
      rate(now, before, s => faultsIn(s.effects)).toFixed(1);
  }
  fill($("effects"), stats.effects.map(([n, e, c]) => [n, e, String(c)]));
  fill($("recent"), stats.recent.slice().reverse().map(f => [
    new Date(f.time * 1000).toLocaleTimeString(), String(f.conn), f.client,
    f.direction, f.handler, f.effect, f.seconds.toFixed(3)]));
  drawCharts();
}

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    node.setAttribute(key, value);
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceCeiling(value) {
  // The smallest of 1, 2, 5, 10, 20, 50... that is at least value.
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

function drawCharts() {
  const seen = new Set();
  for (const s of samples) {
    for (const effect of Object.keys(s.effects)) {
      if (!NOT_FAULTS.has(effect)) seen.add(effect);
    }
  }
  const faults = {};
  for (const effect of [...seen].sort()) {
    faults[effect + "/s"] = [s => s.effects[effect] || 0,
                             COLOURS[effect] || "#999999"];
  }
  drawChart($("picks-chart"), $("picks-legend"),
            {"picks/s": [s => s.picks, "#8c96a0"]}, 120);
  drawChart($("faults-chart"), $("faults-legend"), faults, 160);
}

function drawChart(chart, legendNode, series, H) {
  // One moving chart: a line per series (the rate of a counter).
  const W = 900, left = 44, right = 8, top = 8, bottom = 22;
  const end = samples.length ? samples[samples.length - 1].t : 0;
  const lines = {};
  let most = 1;
  for (const [label, [get]] of Object.entries(series)) {
    const points = [];
    for (let i = 1; i < samples.length; i++) {
      const value = rate(samples[i], samples[i - 1], get);
      points.push([samples[i].t, value]);
      most = Math.max(most, value);
    }
    lines[label] = points;
  }
  most = niceCeiling(most);
  const x = t => left + (W - left - right) * (1 - (end - t) / WINDOW);
  const y = v => top + (H - top - bottom) * (1 - v / most);
  const nodes = [];
  for (let i = 0; i <= 4; i++) {
    const v = most * i / 4;
    nodes.push(svg("line", {x1: left, x2: W - right, y1: y(v), y2: y(v),
                            stroke: "#eceff2"}));
    nodes.push(svg("text", {x: left - 6, y: y(v) + 4, "text-anchor": "end"},
                   String(Math.round(v * 100) / 100)));
  }
  for (let s = 0; s <= WINDOW; s += 10) {
    nodes.push(svg("text", {x: x(end - s), y: H - 6,
                            "text-anchor": s ? "middle" : "end"},
                   s ? "-" + s + " s" : "now"));
  }
  const legend = [];
  for (const [label, points] of Object.entries(lines)) {
    const colour = series[label][1];
    legend.push([label, colour]);
    const visible = points.filter(([t]) => end - t <= WINDOW);
    if (!visible.length) continue;
    nodes.push(svg("polyline", {
      fill: "none", stroke: colour, "stroke-width": 2,
      points: visible.map(([t, v]) => x(t).toFixed(1) + "," +
                          y(v).toFixed(1)).join(" ")}));
  }
  chart.replaceChildren(...nodes);
  legendNode.replaceChildren(...legend.map(([label, colour]) => {
    const span = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.className = "sw";
    swatch.style.background = colour;
    span.append(swatch, label);
    return span;
  }));
  if (!legend.length) legendNode.textContent = "no fault yet";
}

async function loadHandlers() {
  const data = await api("GET", route("/handlers"));
  const select = $("handler");
  select.replaceChildren(...data.handlers.map(name => {
    const option = document.createElement("option");
    option.value = option.textContent = name;
    return option;
  }));
  handlersLoaded = true;
}

function choose(name) {
  if (name === current) return;
  current = name;
  handlersLoaded = false;
  samples.length = 0;         // the charts start over for this proxy
  say("");
  refresh();
}

async function loadProxies() {
  const listed = (await api("GET", "/group")).proxies;
  if (listed.length < 2) {
    current = null;
    $("proxies-box").classList.add("hidden");
    return;
  }
  const names = listed.map(p => p.name);
  if (current === null || !names.includes(current)) {
    current = names.includes("default") ? "default" : names[0];
    handlersLoaded = false;
    samples.length = 0;
  }
  $("proxies").replaceChildren(...listed.map(info => {
    const tr = document.createElement("tr");
    tr.dataset.proxy = info.name;
    [info.name, info.listen, info.upstream, info.enabled ? "yes" : "no",
     String(info.connections)].forEach(v => cell(tr, v));
    const td = cell(tr, "");
    const button = document.createElement("button");
    button.className = "plain";
    button.textContent = info.name === current ? "shown" : "show";
    button.disabled = info.name === current;
    button.addEventListener("click", () => choose(info.name));
    td.appendChild(button);
    if (info.name === current) tr.className = "current";
    return tr;
  }));
  $("proxies-box").classList.remove("hidden");
}

async function refresh() {
  try {
    await loadProxies();
    if (!handlersLoaded) await loadHandlers();
    const shown = current;
    const [proxy, stats] = await Promise.all([
      api("GET", route("/proxy")), api("GET", route("/stats"))]);
    if (shown !== current) return;      // another proxy was picked meanwhile
    showProxy(proxy);
    showBehavior(proxy);
    showStats(stats);
    $("token-bar").classList.add("hidden");
    $("read-msg").textContent = "";
  } catch (error) {
    $("read-msg").textContent = "Cannot read the proxy: " + error.message;
  }
}

function parseOptions(text) {
  const options = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const eq = line.indexOf("=");
    const dot = line.lastIndexOf(".", eq);
    if (eq < 0 || dot < 1) {
      throw new Error("expected NAME.OPTION=VALUE, got " +
                      JSON.stringify(line));
    }
    const name = line.slice(0, dot), option = line.slice(dot + 1, eq);
    (options[name] = options[name] || {})[option] = line.slice(eq + 1);
  }
  return options;
}

let acting = 0;               // only the last action's answer is shown

async function act(what, work) {
  const mine = ++acting;
  try {
    await work();
    if (mine === acting) say(what);
  } catch (error) {
    if (mine === acting) say(error.message, true);
  }
  await refresh();
}

$("use-form").addEventListener("submit", event => {
  event.preventDefault();
  const name = $("handler").value;
  act("All the traffic now goes to " + name + ".",
      () => api("PUT", route("/behavior"), {name: name}));
});

$("mix-form").addEventListener("submit", event => {
  event.preventDefault();
  const behavior = $("mix").value.trim() || $("behavior").textContent;
  act("Behavior set to " + behavior + ".", () => api("PUT", route("/behavior"), {
    behavior: behavior, options: parseOptions($("mix-options").value)}));
});

$("down").addEventListener("click", () => act(
  "The service is down: clients are refused.",
  () => api("PUT", route("/proxy"), {enabled: false})));

$("up").addEventListener("click", () => act(
  "The service is up again.",
  () => api("PUT", route("/proxy"), {enabled: true})));

$("token-form").addEventListener("submit", event => {
  event.preventDefault();
  token = $("token").value;
  sessionStorage.setItem("vaurien-token", token);
  $("token").value = "";
  refresh();
});

takeTokenFromAddress();
refresh();
setInterval(refresh, 1000);
"""


def _digest(text):
    return "'sha256-%s'" % base64.b64encode(
        hashlib.sha256(text.encode('utf-8')).digest()).decode('ascii')


#: The page, as served.
PAGE = ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '\n<title>Vaurien dashboard</title>\n<link rel="icon" href="data:,">\n'
        '<style>%s</style></head>\n'
        '<body>%s<script>%s</script></body></html>\n'
        % (_STYLE, _BODY, _SCRIPT))

#: The headers served with the page: only its own inline script and style
#: run, only this origin is fetched, no framing, nothing cached.
HEADERS = [
    ('Content-Security-Policy',
     "default-src 'none'; script-src %s; style-src %s; connect-src 'self'; "
     "img-src data:; base-uri 'none'; form-action 'none'; "
     "frame-ancestors 'none'" % (_digest(_SCRIPT), _digest(_STYLE))),
    ('X-Frame-Options', 'DENY'),
    ('X-Content-Type-Options', 'nosniff'),
    ('Referrer-Policy', 'no-referrer'),
    ('Cache-Control', 'no-store'),
]
