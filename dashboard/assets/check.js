// The page of one check: latency per region and by phase, daily uptime, recent failures, the definition.
const REGION_COLORS = ['#3b82f6', '#10b981', '#f59e0b', '#ef4444', '#8b5cf6', '#06b6d4', '#ec4899', '#84cc16'];
const PHASE_COLORS = ['#6366f1', '#0ea5e9', '#14b8a6', '#f59e0b', '#f43f5e', '#a855f7', '#64748b'];
const RANGES = ['1h', '6h', '24h', '7d', '30d'];
const TICKS = [60e3, 300e3, 900e3, 1800e3, 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3, 2 * 86400e3, 7 * 86400e3];

/** A round step for about `count` ticks up to `max`. */
function niceStep(max, count) {
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
}

/** Draws a chart into `box`: lines per series, or stacked areas; values in ms; hover shows a tooltip. `hover`
 * ({ t }) keeps the hovered time, so that a redraw (a live update) shows the same point again; `threshold`
 * (ms) draws the degraded_after line. */
function chart(h, box, { series, from, to, stacked, failures, threshold, hover }) {
  const width = Math.max(box.clientWidth, 280);
  const height = 210;
  const m = { l: 52, r: 8, t: 8, b: 22 };
  const w = width - m.l - m.r;
  const hh = height - m.t - m.b;
  let layers = series;
  if (stacked) {
    const sums = new Map();
    layers = series.map((s) => ({ ...s, points: s.points.map(([t, v]) => {
      const below = sums.get(t) || 0;
      const top = v === null ? null : below + v;
      if (top !== null) sums.set(t, top);
      return [t, top, below];
    }) }));
  }
  let max = 0;
  for (const s of layers) for (const [, v] of s.points) if (v !== null && v > max) max = v;
  const empty = max <= 0;
  if (threshold && threshold > max) max = threshold;
  if (max <= 0) max = 1;
  const step = niceStep(max * 1.08, 4);
  const top = Math.ceil((max * 1.08) / step) * step;
  const x = (t) => m.l + ((t - from) / Math.max(to - from, 1)) * w;
  const y = (v) => m.t + hh - (v / top) * hh;
  let svg = `<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img"><g class="ax">`;
  for (let v = 0; v <= top + step / 2; v += step) {
    svg += `<line x1="${m.l}" x2="${width - m.r}" y1="${y(v)}" y2="${y(v)}"/><text x="${m.l - 6}" y="${y(v) + 4}" text-anchor="end">${h.ms(v)}</text>`;
  }
  const tick = TICKS.find((t) => (to - from) / t <= w / 90) || TICKS[TICKS.length - 1];
  const offset = new Date().getTimezoneOffset() * 60e3;
  const long = to - from > 36 * 3600e3;
  for (let t = Math.ceil((from - offset) / tick) * tick + offset; t <= to; t += tick) {
    const label = long ? h.day(t).slice(5) : h.time(t).slice(11);
    const anchor = x(t) > width - m.r - 18 ? 'end' : x(t) < m.l + 18 ? 'start' : 'middle';
    svg += `<text x="${x(t)}" y="${height - 5}" text-anchor="${anchor}">${label}</text>`;
  }
  svg += '</g>';
  for (const s of layers.slice().reverse()) {
    let d = '';
    let pen = false;
    if (stacked) {
      const pts = s.points.filter((p) => p[1] !== null);
      if (pts.length) {
        d = pts.map(([t, v], i) => `${i ? 'L' : 'M'}${x(t).toFixed(1)} ${y(v).toFixed(1)}`).join('') +
          pts.slice().reverse().map(([t, , b]) => `L${x(t).toFixed(1)} ${y(b).toFixed(1)}`).join('') + 'Z';
      }
      svg += `<path d="${d}" fill="${s.color}" fill-opacity="0.78" stroke="${s.color}" stroke-width="0.8"/>`;
    } else {
      for (const [t, v] of s.points) {
        if (v === null) { pen = false; continue; }
        d += `${pen ? 'L' : 'M'}${x(t).toFixed(1)} ${y(v).toFixed(1)}`;
        pen = true;
      }
      svg += `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.6" stroke-linejoin="round"/>`;
    }
  }
  if (threshold) {
    svg += `<g class="threshold"><line x1="${m.l}" x2="${width - m.r}" y1="${y(threshold)}" y2="${y(threshold)}"/><text x="${m.l + 4}" y="${y(threshold) - 4}">degraded after ${h.ms(threshold)}</text></g>`;
  }
  if (empty) svg += `<text class="nodata" x="${m.l + w / 2}" y="${m.t + hh / 2}" text-anchor="middle">No run in this range</text>`;
  for (const t of failures || []) svg += `<rect class="fail-tick" x="${(x(t) - 1.5).toFixed(1)}" y="${m.t + hh - 5}" width="3" height="5"><title>failed run at ${h.time(t)}</title></rect>`;
  svg += `<line class="hl" x1="0" x2="0" y1="${m.t}" y2="${m.t + hh}" visibility="hidden"/></svg><div class="tip" hidden></div>`;
  box.innerHTML = svg;
  const line = box.querySelector('.hl');
  const tip = box.querySelector('.tip');
  const times = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const show = (t) => {
    let near = times[0];
    for (const candidate of times) if (Math.abs(candidate - t) < Math.abs(near - t)) near = candidate;
    if (hover) hover.t = near;
    box.dataset.hover = String(near);
    line.setAttribute('x1', x(near));
    line.setAttribute('x2', x(near));
    line.setAttribute('visibility', 'visible');
    const rows = series.map((s) => {
      const point = s.points.find((p) => p[0] === near);
      return `<div><i class="sw-${s.key}"></i>${h.esc(s.name)}: <b>${h.ms(point ? point[1] : null)}</b></div>`;
    });
    tip.innerHTML = `<div class="muted">${h.time(near)}</div>${rows.join('')}`;
    tip.querySelectorAll('i').forEach((swatch, i) => { swatch.style.background = series[i].color; });
    tip.hidden = false;
    const left = x(near) + 12;
    tip.style.left = `${left + tip.offsetWidth > width ? x(near) - tip.offsetWidth - 12 : left}px`;
    tip.style.top = '8px';
  };
  box.querySelector('svg').addEventListener('mousemove', (event) => {
    if (!times.length) return;
    const rect = event.currentTarget.getBoundingClientRect();
    show(from + ((event.clientX - rect.left - m.l) / w) * (to - from));
  });
  box.querySelector('svg').addEventListener('mouseleave', () => {
    tip.hidden = true;
    line.setAttribute('visibility', 'hidden');
    if (hover) hover.t = null;
    delete box.dataset.hover;
  });
  if (hover && hover.t !== null && times.length && hover.t >= from && hover.t <= to) show(hover.t);
}

function legend(h, items) {
  return `<div class="legend">${items.map(([name, color]) => `<span><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" rx="2" fill="${color}"/></svg> ${h.esc(name)}</span>`).join('')}</div>`;
}

function bars(h, days, height) {
  const n = Math.max(days.length, 1);
  const slot = 300 / n;
  const rects = days.map((d, i) => {
    const cls = d.uptime === null ? 'bar-none' : d.uptime >= 0.999 ? 'bar-up' : d.uptime >= 0.99 ? 'bar-mid' : 'bar-low';
    return `<rect class="${cls}" x="${(i * slot).toFixed(2)}" y="0" width="${Math.max(slot - 1.2, 0.6).toFixed(2)}" height="${height}" rx="1"><title>${h.day(d.day_ms)}: ${d.uptime === null ? 'no data' : h.pct(d.uptime)}</title></rect>`;
  }).join('');
  return `<svg viewBox="0 0 300 ${height}" preserveAspectRatio="none" role="img">${rects}</svg>`;
}

/** Identical failures (same region, reason and error) as one entry: the newest run, how many, since when. */
function artifactUrl(base, path) {
  return `${base}/api/ui/artifacts/${path.split('/').map(encodeURIComponent).join('/')}`;
}

// Fills a failure's traceroute placeholder: the summary line and a small hop table (fetched like a screenshot).
async function showTraceroute(h, el) {
  const { esc } = h;
  let evidence;
  try {
    const response = await fetch(el.dataset.src, { cache: 'no-cache', headers: { Accept: 'application/json' } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    evidence = await response.json();
  } catch (error) {
    el.innerHTML = `<p class="muted">Traceroute not available (${esc(String(error.message || error))}).</p>`;
    return;
  }
  const t = evidence.traceroute || {};
  const rows = (t.hops || []).map((hop) => `<tr><td class="num">${esc(String(hop.ttl))}</td><td class="mono">${hop.address ? esc(hop.address) : '<span class="muted">*</span>'}</td><td class="mono">${(hop.rtt_ms || []).map((ms) => `${ms.toFixed(2)} ms`).join(', ') || '–'}</td><td>${esc(hop.note || '')}</td></tr>`).join('');
  el.innerHTML = `<details open><summary>Traceroute from ${esc(el.dataset.region)} to <span class="mono">${esc(t.target || '?')}</span> (${esc(t.method || '?')}): ${esc(t.summary || '')}</summary>
    <div class="tablewrap"><table class="hops"><tr><th>Hop</th><th>Address</th><th>Round trips</th><th></th></tr>${rows}</table></div></details>`;
}

function groupFailures(failures) {
  const groups = new Map();
  for (const f of failures) {
    const key = JSON.stringify([f.region, f.reason, f.error]);
    const group = groups.get(key);
    if (group) {
      group.count++;
      group.since = Math.min(group.since, f.planned_at_ms);
      // The newest traceroute of the group (the prober captures one per pair per interval).
      if (!group.traceroute && f.traceroute) group.traceroute = f.traceroute;
    } else {
      groups.set(key, { ...f, count: 1, since: f.planned_at_ms });
    }
  }
  return [...groups.values()];
}

function average(days) {
  const known = days.filter((d) => d.uptime !== null);
  return known.length ? known.reduce((sum, d) => sum + d.uptime, 0) / known.length : null;
}

export function run(h) {
  const { base, esc, main } = h;
  const name = decodeURIComponent(location.pathname.slice(base.length + '/checks/'.length));
  const hash = new URLSearchParams(location.hash.slice(1));
  // Without a range in the address, the server picks the shortest that holds the check's runs (range=auto).
  let range = RANGES.includes(hash.get('range')) ? hash.get('range') : null;
  let region = hash.get('region');
  let detail = null;
  const hovers = { lat: { t: null }, phases: { t: null } };

  function draw() {
    const d = detail;
    const regions = d.regions;
    if (!regions.some((r) => r.region === region)) region = regions.length ? regions[0].region : null;
    const selected = regions.find((r) => r.region === region);
    const shownRange = range || d.range || '24h';
    const labels = Object.entries(d.labels).map(([k, v]) => `<span class="chip">${esc(k)}=${esc(v)}</span>`).join('');
    const why = regions.filter((r) => r.reason && r.state !== 'up').map((r) =>
      `<p class="why" data-region="${esc(r.region)}"><span class="badge ${esc(r.state)}">${h.STATE_LABEL[r.state]}</span> <b>${esc(r.region)}</b>: ${esc(r.reason)}</p>`).join('');
    const maintenance = (d.maintenance || []).map((m) => `<p class="why maint"><span class="badge">${m.active ? 'Maintenance' : 'Scheduled'}</span> ${m.mode === 'pause' ? 'runs paused' : 'alerts muted'} ${m.active ? `until ${h.time(m.end_ms)}` : `from ${h.time(m.start_ms)} to ${h.time(m.end_ms)}`}</p>`).join('');
    const pills = regions.map((r, i) => `<button type="button" class="pill s${h.STATES.indexOf(r.state)}" data-region="${esc(r.region)}" aria-pressed="${r.region === region}"><i class="dot"></i>${esc(r.region)} <b>${h.pct(r.uptime)}</b></button>`).join('');
    const failures = groupFailures(d.failures).map((f) => {
      const asserts = f.assertions.length ? `<div class="tablewrap"><table class="asserts"><tr><th>Assertion</th><th>Expected</th><th>Observed</th><th></th></tr>${f.assertions.map((a) =>
        `<tr><td>${esc(a.name)}</td><td class="mono">${esc(a.expected)}</td><td class="mono">${esc(a.observed)}</td><td class="${a.passed ? 'ok' : 'bad'}">${a.passed ? 'passed' : 'failed'}</td></tr>`).join('')}</table></div>` : '';
      const url = f.screenshot ? artifactUrl(base, f.screenshot) : null;
      const trace = f.traceroute ? `<div class="trace" data-src="${esc(artifactUrl(base, f.traceroute))}" data-region="${esc(f.region)}"></div>` : '';
      const shot = url ? `<a class="shot" href="${url}" target="_blank" rel="noopener"><img src="${url}" alt="Screenshot of the failed run in ${esc(f.region)}"></a>` : '<span></span>';
      const when = f.count > 1
        ? `<span class="count" title="${f.count} failed runs with this error">× ${f.count}</span><time class="muted">since ${h.time(f.since)}, last ${h.time(f.planned_at_ms)}</time>`
        : `<time class="muted">${h.time(f.planned_at_ms)}</time>`;
      return `<article class="fail" data-count="${f.count}"><div><header><span class="badge down">${esc(f.reason)}</span><b>${esc(f.region)}</b>${when}</header><p class="err">${esc(f.error)}</p>${asserts}${trace}</div>${shot}</article>`;
    }).join('');
    main.innerHTML = `<div class="crumbs"><a href="${base}/">Overview</a> / ${esc(d.name)}</div>
      <div class="head"><div><h1>${esc(d.name)}</h1><div class="meta"><span class="kind">${esc(d.kind)}</span><span class="mono">${esc(d.target)}</span>${labels}</div></div>
      <div class="seg" role="group" aria-label="Time range">${RANGES.map((r) => `<button type="button" data-range="${r}" aria-pressed="${r === shownRange}">${r}</button>`).join('')}</div></div>
      <div class="pills" aria-label="Regions: state and uptime over the range"${d.uptime_as_of_ms ? ` title="Uptime as of ${h.time(d.uptime_as_of_ms)}"` : ''}>${pills}</div>${maintenance}${why}
      <div class="cols"><section class="card"><h2>Latency per region</h2><div class="chart" id="lat"></div>${legend(h, regions.map((r, i) => [r.region, REGION_COLORS[i % REGION_COLORS.length]]))}</section>
      <section class="card"><h2>Phases in ${esc(region || '–')}</h2><div class="chart" id="phases"></div>${legend(h, d.phases.map((p, i) => [p, PHASE_COLORS[i % PHASE_COLORS.length]]))}</section></div>
      <section class="card"><h2>Daily uptime, last ${regions[0] ? regions[0].daily.length : 0} days</h2><div class="daily">${regions.map((r) =>
        `<span>${esc(r.region)}</span>${bars(h, r.daily, 22)}<span class="num">${h.pct(r.daily_uptime !== undefined ? r.daily_uptime : average(r.daily))}</span>`).join('')}</div></section>
      <section class="card" id="failures"><h2>Recent failures</h2>${failures || '<p class="muted">No failed run in this period.</p>'}</section>
      <section class="card"><h2>Definition</h2><pre class="def">${esc(d.definition)}</pre></section>`;
    document.title = `${d.name} · probenet`;
    const regionSeries = regions.map((r, i) => ({ key: i, name: r.region, color: REGION_COLORS[i % REGION_COLORS.length],
      points: r.latency.map((p) => [p.at_ms, p.seconds === null ? null : p.seconds * 1000]) }));
    const failed = regions.flatMap((r) => r.latency.filter((p) => p.failures > 0).map((p) => p.at_ms));
    const threshold = d.degraded_after_seconds ? d.degraded_after_seconds * 1000 : null;
    chart(h, document.getElementById('lat'), { series: regionSeries, from: d.from_ms, to: d.to_ms, failures: failed, threshold, hover: hovers.lat });
    const phaseSeries = d.phases.map((p, i) => ({ key: i, name: p, color: PHASE_COLORS[i % PHASE_COLORS.length],
      points: (selected ? selected.latency : []).map((pt) => [pt.at_ms, pt.phases[i] === null || pt.phases[i] === undefined ? null : pt.phases[i] * 1000]) }));
    chart(h, document.getElementById('phases'), { series: phaseSeries, from: d.from_ms, to: d.to_ms, stacked: true, hover: hovers.phases });
    for (const el of main.querySelectorAll('.trace[data-src]')) showTraceroute(h, el);
  }

  function remember() {
    const params = new URLSearchParams();
    if (range) params.set('range', range);
    if (region) params.set('region', region);
    history.replaceState(null, '', `${location.pathname}${params.toString() ? `#${params}` : ''}`);
  }

  async function load() {
    detail = await h.api(`/api/ui/checks/${encodeURIComponent(name)}?range=${range || 'auto'}`);
    draw();
  }

  main.addEventListener('click', (event) => {
    const rangeButton = event.target.closest('button[data-range]');
    if (rangeButton) {
      range = rangeButton.dataset.range;
      hovers.lat.t = null;
      hovers.phases.t = null;
      remember();
      load().catch(h.fail);
      return;
    }
    const pill = event.target.closest('button[data-region]');
    if (pill) {
      region = pill.dataset.region;
      remember();
      draw();
    }
  });
  let resizing = 0;
  window.addEventListener('resize', () => { clearTimeout(resizing); resizing = setTimeout(() => detail && draw(), 150); });
  load().then(h.ready, h.fail);
  h.live(load);
}
