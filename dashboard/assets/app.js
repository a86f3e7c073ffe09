// probenet dashboard: shared helpers, live updates, and the loader of each page's module.
const body = document.body;
const base = body.dataset.base || '';
const version = new URL(import.meta.url).search;

const STATES = ['up', 'degraded', 'down', 'no_data'];
const STATE_LABEL = { up: 'Up', degraded: 'Degraded', down: 'Down', no_data: 'No data' };
const HTML_ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML. */
function esc(text) {
  return String(text ?? '').replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

/** Hundredths of a percent (an integer) as the pages show them: 99.95%, 100%, or a dash. */
function pctH(hundredths) {
  if (hundredths === null || hundredths === undefined) return '–';
  if (hundredths >= 10000) return '100%';
  return `${Math.floor(hundredths / 100)}.${String(hundredths % 100).padStart(2, '0')}%`;
}

/** A fraction (0..1) as a percentage, rounded down like the server does. */
function pct(fraction) {
  if (fraction === null || fraction === undefined) return '–';
  return pctH(Math.floor(Math.min(Math.max(fraction, 0), 1) * 10000 + 1e-6));
}

/** Milliseconds, readable. */
function ms(value) {
  if (value === null || value === undefined || !isFinite(value)) return '–';
  if (value === 0) return '0';
  if (value >= 10000) return `${(value / 1000).toFixed(1)} s`;
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`;
  if (value >= 10) return `${Math.round(value)} ms`;
  return `${value.toFixed(1)} ms`;
}

/** A span of seconds, short: 12 s, 5 min, 3 h, 2 d. */
function span(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

const pad = (n) => String(n).padStart(2, '0');

/** A time in the viewer's zone: 2026-06-01 14:05. */
function time(msSinceEpoch) {
  if (msSinceEpoch === null || msSinceEpoch === undefined) return '–';
  const d = new Date(msSinceEpoch);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A time of day with seconds in the viewer's zone: 14:05:30. */
function clock(msSinceEpoch) {
  const d = new Date(msSinceEpoch);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A date in the viewer's zone: 2026-06-01. */
function day(msSinceEpoch) {
  const d = new Date(msSinceEpoch);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** GETs JSON from the read API; revalidates with the server's entity tag. */
async function api(path) {
  const response = await fetch(base + path, { cache: 'no-cache', headers: { Accept: 'application/json' } });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const problem = await response.json();
      if (problem && problem.error) message = problem.error;
    } catch (_) { /* not JSON */ }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

/** The page's main element. */
const main = document.getElementById('main');

/** Shows an error in place of the page (or above it when `keep`). */
function fail(error) {
  main.removeAttribute('aria-busy');
  main.innerHTML = `<p class="error">Cannot load this page: ${esc(error.message || error)}</p>`;
  body.dataset.error = '1';
}

/** Marks the page as drawn: the time since navigation start, once the browser has painted. */
function ready() {
  main.removeAttribute('aria-busy');
  requestAnimationFrame(() => setTimeout(() => {
    body.dataset.ready = String(Math.round(performance.now()));
  }, 0));
}

/** Keeps the banner of a refused config reload current (its slot is on the dashboard pages, not the status page). */
async function refreshReload() {
  const slot = document.getElementById('reload-problem');
  if (!slot) return;
  const state = await api('/api/ui/reload');
  if (!state.failed) {
    slot.hidden = true;
    slot.innerHTML = '';
    return;
  }
  const errors = state.errors.map((error) => `<li><code>${esc(error)}</code></li>`).join('');
  slot.innerHTML = `<b>The config reload of ${time(state.at_ms)} failed; the previous config is still in use.</b> Fix the files (<code>probenet validate</code> shows the same errors); the next change reloads them.<ul>${errors}</ul>`;
  slot.hidden = false;
}

/** Calls `refresh` whenever the server's version changes (server-sent events; polls when they fail). */
function live(refresh) {
  const badge = document.getElementById('live');
  let last = null;
  let busy = false;
  const changed = async (value) => {
    if (last !== null && value !== last && !busy) {
      busy = true;
      try { await refresh(); } catch (error) { console.warn('refresh failed', error); } finally { busy = false; }
      refreshReload().catch((error) => console.warn('reload state', error));
    }
    last = value;
  };
  const show = (on) => {
    if (!badge) return;
    badge.className = on ? 'live on' : 'live off';
    badge.textContent = on ? 'live' : 'reconnecting';
  };
  if (typeof EventSource === 'function') {
    let events = null;
    const connect = () => {
      events = new EventSource(`${base}/api/ui/events`);
      events.addEventListener('version', (event) => { show(true); changed(event.data); });
      events.addEventListener('error', () => show(false));
    };
    connect();
    // A page kept in the back-forward cache must not keep its stream open: browsers allow six connections
    // per server, and pages left behind would use them up.
    addEventListener('pagehide', () => { if (events) { events.close(); events = null; } });
    addEventListener('pageshow', (event) => { if (event.persisted && !events) connect(); });
  } else {
    setInterval(async () => {
      try { changed(String((await api('/api/ui/version')).version)); show(true); } catch (_) { show(false); }
    }, 10000);
  }
}

const helpers = { base, STATES, STATE_LABEL, esc, pct, pctH, ms, span, time, clock, day, api, main, fail, ready, live };

const modules = {
  overview: 'overview.js', check: 'check.js', alerts: 'lists.js', probers: 'lists.js', slos: 'lists.js', status: 'status.js',
};
const page = body.dataset.page;
if (modules[page]) {
  import(`./${modules[page]}${version}`).then((module) => module.run(helpers, page)).catch(fail);
}
