// The alerts, probers and SLO pages: tables and cards over one API call each.

function meter(fraction, warnAbove, badAbove) {
  if (fraction === null || fraction === undefined) return '<span class="muted">–</span>';
  const f = Math.min(Math.max(fraction, 0), 1);
  const cls = f >= badAbove ? 'bad' : f >= warnAbove ? 'warn' : '';
  return `<svg class="meter" viewBox="0 0 100 8" preserveAspectRatio="none" role="img" aria-label="${Math.round(f * 100)}%"><rect class="track" width="100" height="8" rx="4"/><rect class="fill ${cls}" width="${(f * 100).toFixed(1)}" height="8" rx="4"/></svg>`;
}

function alerts(h, data) {
  const { esc, base } = h;
  const check = (a) => a.check ? `<a href="${base}/checks/${encodeURIComponent(a.check)}">${esc(a.check)}</a>` : '<span class="muted">–</span>';
  const firing = data.firing.map((a) => `<tr><td><span class="badge ${esc(a.severity)}">${esc(a.severity)}</span></td><td><b>${esc(a.name)}</b><div class="muted">${esc(a.summary)}</div></td><td>${check(a)}</td><td>${esc(a.regions.join(', ') || 'all')}</td><td class="num">${h.time(a.started_at_ms)}<div class="muted">for ${h.span((data.now_ms - a.started_at_ms) / 1000)}</div></td></tr>`).join('');
  const history = data.history.map((a) => `<tr><td><span class="badge ${esc(a.severity)}">${esc(a.severity)}</span></td><td><b>${esc(a.name)}</b><div class="muted">${esc(a.summary)}</div></td><td>${check(a)}</td><td>${esc(a.regions.join(', ') || 'all')}</td><td class="num">${h.time(a.started_at_ms)}</td><td class="num">${a.resolved_at_ms ? h.span((a.resolved_at_ms - a.started_at_ms) / 1000) : '–'}</td></tr>`).join('');
  const notifiers = (data.notifiers || []).map((n) => {
    const last = n.last;
    const cls = !last ? '' : last.state === 'delivered' ? 'up' : last.state === 'failed' ? 'down' : 'degraded';
    const state = last ? `<span class="badge ${cls}">${esc(last.state)}</span>` : '<span class="muted">none yet</span>';
    return `<tr data-notifier="${esc(n.name)}"><td><b>${esc(n.name)}</b><div class="muted">${esc(n.kind)}</div></td><td>${state}</td><td>${last ? esc(last.alert) : ''}</td><td class="num">${last ? h.time(last.at_ms) : ''}</td><td class="num">${n.sent} / ${n.failed}</td><td class="muted">${last && last.error ? esc(last.error) : ''}</td></tr>`;
  }).join('');
  const notifierCard = notifiers ? `<section class="card" id="notifiers"><h2>Notifiers</h2><div class="tablewrap"><table><tr><th>Notifier</th><th>Last delivery</th><th>Alert</th><th>When</th><th>Sent / failed</th><th>Error</th></tr>${notifiers}</table></div></section>` : '';
  return `<h1>Alerts</h1>
    <section class="card"><h2>Firing <span class="badge ${data.firing.length ? 'down' : 'up'}">${data.firing.length}</span></h2>${firing ? `<div class="tablewrap"><table id="firing"><tr><th>Severity</th><th>Alert</th><th>Check</th><th>Regions</th><th>Since</th></tr>${firing}</table></div>` : '<p class="muted">Nothing is firing.</p>'}</section>
    <section class="card"><h2>History</h2>${history ? `<div class="tablewrap"><table id="history"><tr><th>Severity</th><th>Alert</th><th>Check</th><th>Regions</th><th>Started</th><th>Lasted</th></tr>${history}</table></div>` : '<p class="muted">No resolved alert yet.</p>'}</section>${notifierCard}`;
}

function probers(h, data) {
  const { esc } = h;
  const sections = data.regions.map((region) => {
    const healthy = region.probers.filter((p) => !p.impaired).length;
    const rows = region.probers.map((p) => {
      const age = p.last_heartbeat_ms === null ? null : (data.now_ms - p.last_heartbeat_ms) / 1000;
      const silent = age !== null && age > 60;
      const state = p.impaired ? '<span class="badge down">impaired</span>' : silent ? '<span class="badge degraded">silent</span>' : p.late ? '<span class="badge degraded">late</span>' : '<span class="badge up">healthy</span>';
      const why = [p.impaired_reason, p.late].filter(Boolean).map((text) => `<div class="muted">${esc(text)}</div>`).join('');
      const count = (n) => (n === null || n === undefined ? '–' : n.toLocaleString('en-US'));
      const delay = p.result_delay_seconds === null || p.result_delay_seconds === undefined ? '–' : p.result_delay_seconds < 10 ? `${p.result_delay_seconds.toFixed(1)} s` : h.span(p.result_delay_seconds);
      const losses = (p.results_dropped || 0) + (p.runs_skipped || 0);
      return `<tr data-prober="${esc(p.name)}"><td><b>${esc(p.name)}</b>${why}</td><td>${state}</td><td class="num">${age === null ? 'never' : `${h.span(age)} ago`}</td><td class="mono">${esc(p.version)}</td><td class="num">${p.assigned.toLocaleString('en-US')}</td><td><span class="loadcell">${meter(p.load, 0.7, 0.9)}<span class="muted num">${p.load === null ? '' : `${Math.round(p.load * 100)}%`}</span></span></td><td class="num">${delay}</td><td class="num">${count(p.results_pending)}</td><td class="num${losses ? ' bad' : ''}">${count(p.results_dropped)} / ${count(p.runs_skipped)}</td></tr>`;
    }).join('');
    return `<section class="card" data-region="${esc(region.region)}"><h2>${esc(region.region)} <span class="badge ${healthy === region.probers.length ? 'up' : healthy ? 'degraded' : 'down'}">${healthy} of ${region.probers.length} healthy</span></h2>
      ${rows ? `<div class="tablewrap"><table class="fixed"><tr><th class="wide">Prober</th><th>State</th><th>Heartbeat</th><th>Version</th><th>Assigned</th><th>Load</th><th title="The latest arrival of its results after their run, over the last minute">Delay</th><th title="Results not acknowledged yet">Backlog</th><th title="Results lost / planned runs not made, since it started">Dropped / skipped</th></tr>${rows}</table></div>` : '<p class="muted">No prober in this region.</p>'}</section>`;
  }).join('');
  const replicas = (data.schedulers || []).map((s) => {
    const age = (data.now_ms - s.last_seen_ms) / 1000;
    const state = s.leader ? '<span class="badge up">leader</span>' : age > 10 ? '<span class="badge down">silent</span>' : '<span class="badge">follower</span>';
    return `<tr><td><b>${esc(s.name)}</b><div class="muted mono">${esc(s.url)}</div></td><td>${state}</td><td class="num">${h.span(Math.max(age, 0))} ago</td><td class="mono">${esc(s.version)}</td></tr>`;
  }).join('');
  const schedulers = replicas ? `<section class="card" data-schedulers><h2>Schedulers</h2><div class="tablewrap"><table class="fixed"><tr><th class="wide">Replica</th><th>Role</th><th>Seen</th><th>Version</th></tr>${replicas}</table></div></section>` : '';
  return `<h1>Probers</h1>${schedulers}${sections || '<p class="empty">No prober has registered yet.</p>'}`;
}

function slos(h, data) {
  const { esc, base } = h;
  const cards = data.slos.map((s) => {
    const budget = s.budget_remaining;
    const known = budget !== null && budget !== undefined && isFinite(budget);
    const exhausted = known && budget <= 0;
    // Tenths of a percent, rounded down, so that what is left and what is used add up to 100%.
    const leftTenths = known ? Math.floor(Math.min(Math.max(budget, 0), 1) * 1000 + 1e-6) : null;
    const tenths = (n) => `${Math.floor(n / 10)}.${n % 10}%`;
    const cls = !known ? '' : budget < 0.25 ? 'down' : budget < 0.5 ? 'degraded' : 'up';
    const spent = known ? 1 - budget : null;
    const times = (x) => (x < 10 ? x.toFixed(1) : Math.round(x).toLocaleString('en-US'));
    const left = !known ? '–' : exhausted ? 'Exhausted' : tenths(leftTenths);
    const caption = !known ? '' : exhausted
      ? `Error budget exhausted: ${times(spent)}× the budget spent`
      : `${tenths(1000 - leftTenths)} of the budget used`;
    const burns = s.burn_rates.map((b) => `<span class="badge ${b.rate === null ? '' : b.rate >= 2 ? 'down' : b.rate >= 1 ? 'degraded' : ''}">${esc(b.window)} ×${b.rate === null ? '–' : times(b.rate)}</span>`).join('');
    return `<section class="card" data-slo="${esc(s.name)}"><h2>${esc(s.name)}</h2><div class="muted"><a href="${base}/checks/${encodeURIComponent(s.check)}">${esc(s.check)}</a> · objective ${h.pct(s.objective)} over ${s.window_days === 1 ? 'a day' : `${s.window_days} days`}</div>
      <div class="slo-figures"><div><b class="badge-text ${cls}">${left}</b><span>error budget left</span></div><div><b>${h.pct(s.sli)}</b><span>availability so far</span></div></div>
      ${meter(known ? 1 - leftTenths / 1000 : null, 0.5, 0.75)}<div class="muted caption">${caption}</div><div class="burns" title="Burn rate: 1 spends the budget exactly over the window">${burns}</div></section>`;
  }).join('');
  return `<h1>SLOs</h1>${cards ? `<div class="slos">${cards}</div>` : '<p class="empty">No SLO is defined.</p>'}`;
}

const VIEWS = { alerts: ['/api/ui/alerts', alerts], probers: ['/api/ui/probers', probers], slos: ['/api/ui/slos', slos] };

export function run(h, page) {
  const [path, view] = VIEWS[page];
  async function load() {
    h.main.innerHTML = view(h, await h.api(path));
  }
  load().then(h.ready, h.fail);
  h.live(load);
}
