// The overview: every check against every region, with search, filters and sorting, all in the browser.
const CHUNK = 40;
const SPARK_DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_';
const SPARK_W = 64;
const SPARK_H = 18;
// Worst first: down, degraded, no data, up.
const SEVERITY = [0, 2, 1, 3];
const SEVERITY_RANK = [3, 1, 0, 2];

const RUN_W = 6;
const RUN_H = 12;

/** A run's duration in ms from its level (see compact.rs): 2^(level/4). */
function runMs(level) {
  return 2 ** (level / 4);
}

/** The recent runs of a cell: [{ at, state, ms, exact }], oldest first (the encoding is in compact.rs). */
function decodeRuns(cell, now) {
  const [, ago, last, , , , , text, gaps, newestAgo] = cell;
  const runs = [];
  if (!text || gaps === null || gaps === undefined) return runs;
  let state = 0;
  for (const c of text) {
    if (c === '!') { state = 1; continue; }
    if (c === '~') { state = 2; continue; }
    const level = SPARK_DIGITS.indexOf(c);
    runs.push({ state, ms: level < 0 ? null : runMs(level), exact: false });
    state = 0;
  }
  const newest = runs[runs.length - 1];
  const exactLast = newestAgo === undefined || newestAgo === null;
  if (exactLast && newest.ms !== null && last !== null) { newest.ms = last; newest.exact = true; }
  let at = now - (exactLast ? ago : newestAgo) * 1000;
  for (let i = runs.length - 1; i >= 0; i--) {
    runs[i].at = at;
    if (i > 0) at -= (Array.isArray(gaps) ? gaps[i - 1] : gaps) * 1000;
  }
  return runs;
}

/** The bar of recent runs: one block per run, coloured by its state. Drawn as one path per state (few elements
 * for thousands of cells); the first hover turns it into one rectangle per run with its tooltip. */
function runsBar(runs) {
  if (!runs.length) return '<span class="runs none">no run yet</span>';
  const paths = [0, 1, 2].map((state) => {
    const d = runs.map((run, i) => (run.state === state ? `M${i * RUN_W} 0h${RUN_W - 2}v${RUN_H}h-${RUN_W - 2}z` : '')).join('');
    return d ? `<path class="r${state}" d="${d}"/>` : '';
  }).join('');
  return `<svg class="runs" viewBox="0 0 ${runs.length * RUN_W} ${RUN_H}" width="${runs.length * RUN_W}" height="${RUN_H}" aria-hidden="true">${paths}</svg>`;
}

/** The blocks of a runs bar as rectangles, each with its tooltip (time, state, duration). */
function runRects(h, runs) {
  return runs.map((run, i) => {
    const text = `${h.clock(run.at)}: ${h.STATE_LABEL[h.STATES[run.state]]}${run.ms === null ? '' : `, ${run.exact ? '' : '~'}${h.ms(run.ms)}`}`;
    return `<rect class="r${run.state}" x="${i * RUN_W}" width="${RUN_W - 2}" height="${RUN_H}"><title>${h.esc(text)}</title></rect>`;
  }).join('');
}

/** The SVG path of a sparkline string ('.' is a gap). */
function sparkPath(spark) {
  const n = spark.length;
  if (n < 2) return '';
  const step = SPARK_W / (n - 1);
  let d = '';
  let pen = false;
  for (let i = 0; i < n; i++) {
    const level = SPARK_DIGITS.indexOf(spark[i]);
    if (level < 0) { pen = false; continue; }
    const x = Math.round(i * step * 10) / 10;
    const y = Math.round((SPARK_H - 1 - (level / 63) * (SPARK_H - 2)) * 10) / 10;
    d += `${pen ? 'L' : 'M'}${x} ${y}`;
    pen = true;
  }
  return d;
}

export function run(h) {
  const { base, STATES, STATE_LABEL, esc, pctH, ms, span, main } = h;
  let data = null;
  let rows = [];
  const filters = { q: '', kind: '', state: '', label: '', sort: 'name' };
  for (const [key, value] of new URLSearchParams(location.hash.slice(1))) if (key in filters) filters[key] = value;

  main.innerHTML = `<div class="summary" id="summary"></div>
    <div class="controls">
      <input id="q" type="search" placeholder="Search checks, targets, labels" aria-label="Search" autocomplete="off">
      <select id="kind" aria-label="Kind"><option value="">All kinds</option></select>
      <select id="state" aria-label="State"><option value="">Any state</option>${STATES.map((s, i) => `<option value="${i}">${STATE_LABEL[s]} in a region</option>`).join('')}</select>
      <select id="label" aria-label="Label"><option value="">All labels</option></select>
      <select id="sort" aria-label="Sort"><option value="name">Sort by name</option><option value="worst">Worst first</option><option value="uptime">Lowest uptime first</option></select>
    </div>
    <p class="shown" id="shown"></p>
    <div class="grid" id="grid"></div>`;
  const grid = document.getElementById('grid');
  const controls = ['q', 'kind', 'state', 'label', 'sort'].map((id) => document.getElementById(id));

  function prepare(json) {
    data = json;
    rows = json.checks.map(([name, kind, target, labels, max, cells], index) => {
      const labelText = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
      let worst = 3;
      let minUp = 10001;
      const states = new Set();
      for (const cell of cells) {
        if (!cell) continue;
        states.add(cell[0]);
        if (SEVERITY_RANK[cell[0]] < SEVERITY_RANK[worst]) worst = cell[0];
        if (cell[3] !== null && cell[3] < minUp) minUp = cell[3];
      }
      return { index, name, kind, target, labels: labelText, max, cells, worst, minUp, states,
        text: `${name}\n${target}\n${kind}\n${labelText.join('\n')}`.toLowerCase() };
    });
    const kinds = [...new Set(rows.map((r) => r.kind))].sort();
    const labels = [...new Set(rows.flatMap((r) => r.labels))].sort();
    const fill = (select, values, first) => {
      select.innerHTML = `<option value="">${first}</option>` + values.map((v) => `<option>${esc(v)}</option>`).join('');
    };
    fill(controls[1], kinds, 'All kinds');
    fill(controls[3], labels, 'All labels');
    controls.forEach((control, i) => { control.value = filters[['q', 'kind', 'state', 'label', 'sort'][i]]; });
    grid.style.setProperty('--n', String(json.regions.length));
  }

  function summary() {
    const counts = [0, 0, 0, 0];
    for (const row of rows) for (const cell of row.cells) if (cell) counts[cell[0]]++;
    const chips = SEVERITY.filter((s) => counts[s] > 0 || s === 0).map((s) =>
      `<button type="button" data-state="${s}" class="s${s}" aria-pressed="${filters.state === String(s)}"><i class="dot"></i>${counts[s].toLocaleString('en-US')} ${STATE_LABEL[STATES[s]].toLowerCase()}</button>`).join('');
    document.getElementById('summary').innerHTML =
      `<span class="total">${rows.length.toLocaleString('en-US')} checks × ${data.regions.length} regions</span>${chips}`;
  }

  function matches(row) {
    if (filters.kind && row.kind !== filters.kind) return false;
    if (filters.state !== '' && !row.states.has(Number(filters.state))) return false;
    if (filters.label && !row.labels.includes(filters.label)) return false;
    if (filters.q) {
      for (const word of filters.q.toLowerCase().split(/\s+/)) if (word && !row.text.includes(word)) return false;
    }
    return true;
  }

  function runsSummary(runs) {
    if (!runs.length) return 'no run yet';
    const counts = [0, 0, 0];
    for (const run of runs) counts[run.state]++;
    const parts = [0, 1, 2].filter((s) => counts[s]).map((s) => `${counts[s]} ${STATE_LABEL[STATES[s]].toLowerCase()}`);
    const failed = runs.filter((run) => run.state === 2);
    return `last ${runs.length} runs: ${parts.join(', ')}` + (failed.length ? `, last failed at ${h.clock(failed[failed.length - 1].at)}` : '');
  }

  function cellHtml(row, cell, region) {
    if (!cell) return `<span class="c na" data-region="${esc(region)}" title="Not run in ${esc(region)}"></span>`;
    const [state, ago, last, u24, u7, u30, spark, , , , reason] = cell;
    const runs = decodeRuns(cell, data.now);
    const why = reason ? ` (${reason})` : '';
    const label = `${row.name} in ${region}: ${STATE_LABEL[STATES[state]]}${why}` +
      (ago === null ? ', no run yet' : `, last run ${span(ago)} ago, took ${ms(last)}`) +
      `; uptime ${pctH(u24)} over 24 h; ${runsSummary(runs)}`;
    const title = `${region}: ${STATE_LABEL[STATES[state]]}${why}` +
      (ago === null ? ', no run yet' : `, last run ${span(ago)} ago, ${ms(last)}`) +
      (row.max ? `; 24 h latency up to ${ms(row.max)}` : '');
    return `<a class="c s${state}" data-region="${esc(region)}" href="${base}/checks/${encodeURIComponent(row.name)}#region=${encodeURIComponent(region)}" title="${esc(title)}" aria-label="${esc(label)}">` +
      `<i class="dot"></i><b class="u24">${pctH(u24)}</b>` +
      `<svg class="spk" viewBox="0 0 ${SPARK_W} ${SPARK_H}" aria-hidden="true"><path d="${sparkPath(spark)}"/></svg>` +
      `<span class="rl">${runsBar(runs)}<span class="lat">${ago === null ? '' : ms(last)}</span></span>` +
      `<span class="l2"><span class="u7">${pctH(u7)}</span><span class="u30">${pctH(u30)}</span>${reason ? `<span class="why">${esc(reason)}</span>` : ''}</span></a>`;
  }

  // A runs bar gets a rectangle and a tooltip (time, state, duration) per run when the pointer first comes over it.
  grid.addEventListener('mouseover', (event) => {
    const svg = event.target.closest && event.target.closest('svg.runs');
    if (!svg || svg.dataset.titled) return;
    const rowEl = svg.closest('.row');
    const cellEl = svg.closest('.c');
    const row = rows.find((r) => r.name === rowEl.dataset.check);
    const i = data.regions.indexOf(cellEl.dataset.region);
    const cell = row && row.cells[i];
    if (!cell) return;
    svg.innerHTML = runRects(h, decodeRuns(cell, data.now));
    svg.dataset.titled = '1';
  });

  function rowHtml(row) {
    const labels = row.labels.map((l) => `<span class="chip">${esc(l)}</span>`).join('');
    let html = `<div class="row" data-check="${esc(row.name)}"><div class="chk"><div class="n"><a href="${base}/checks/${encodeURIComponent(row.name)}">${esc(row.name)}</a><span class="kind">${esc(row.kind)}</span></div>` +
      `<div class="t"><span title="${esc(row.target)}">${esc(row.target)}</span>${labels}</div></div>`;
    data.regions.forEach((region, i) => { html += cellHtml(row, row.cells[i], region); });
    return html + '</div>';
  }

  function render() {
    let shown = rows.filter(matches);
    if (filters.sort === 'worst') {
      shown = shown.slice().sort((a, b) => SEVERITY_RANK[a.worst] - SEVERITY_RANK[b.worst] || a.minUp - b.minUp || a.index - b.index);
    } else if (filters.sort === 'uptime') {
      shown = shown.slice().sort((a, b) => a.minUp - b.minUp || a.index - b.index);
    }
    const parts = [`<div class="ghead"><div>Check</div>${data.regions.map((r) => `<div>${esc(r)}</div>`).join('')}</div>`];
    for (let i = 0; i < shown.length; i += CHUNK) parts.push(`<div class="chunk">${shown.slice(i, i + CHUNK).map(rowHtml).join('')}</div>`);
    if (shown.length === 0) parts.push(`<p class="empty">${rows.length ? 'No check matches these filters.' : 'No checks yet.'}</p>`);
    grid.innerHTML = parts.join('');
    document.getElementById('shown').textContent = shown.length === rows.length
      ? `All ${rows.length.toLocaleString('en-US')} checks. Uptime over 24 h, 7 d and 30 d${data.uptime_as_of ? ` of closed hours (as of ${h.time(data.uptime_as_of)})` : ' of closed hours (none yet: an hour is counted 2 minutes after it ends)'}; latency over the last 24 h; the last runs and the last latency.`
      : `${shown.length.toLocaleString('en-US')} of ${rows.length.toLocaleString('en-US')} checks match.`;
    summary();
    document.body.dataset.rows = String(shown.length);
  }

  function saveFilters() {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(filters)) if (value && !(key === 'sort' && value === 'name')) params.set(key, value);
    const hash = params.toString();
    history.replaceState(null, '', hash ? `#${hash}` : location.pathname + location.search);
  }

  let typing = 0;
  controls.forEach((control) => {
    control.addEventListener(control.id === 'q' ? 'input' : 'change', () => {
      filters[control.id] = control.value;
      clearTimeout(typing);
      typing = setTimeout(() => { saveFilters(); render(); }, control.id === 'q' ? 90 : 0);
    });
  });
  document.getElementById('summary').addEventListener('click', (event) => {
    const button = event.target.closest('button[data-state]');
    if (!button) return;
    filters.state = filters.state === button.dataset.state ? '' : button.dataset.state;
    controls[2].value = filters.state;
    saveFilters();
    render();
  });

  async function load() {
    prepare(await h.api('/api/ui/overview'));
    render();
  }
  load().then(h.ready, h.fail);
  h.live(load);
}
