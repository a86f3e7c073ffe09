// The public status page: the chosen checks, their state per region, daily uptime bars and incidents.
const REFRESH_MS = 30000;

function bars(h, days) {
  const n = Math.max(days.length, 1);
  const slot = 600 / n;
  return `<svg viewBox="0 0 600 30" preserveAspectRatio="none" role="img" aria-label="Uptime per day">${days.map((d, i) => {
    const cls = d.uptime === null ? 'bar-none' : d.uptime >= 0.999 ? 'bar-up' : d.uptime >= 0.99 ? 'bar-mid' : 'bar-low';
    return `<rect class="${cls}" x="${(i * slot).toFixed(2)}" width="${Math.max(slot - 2, 1).toFixed(2)}" height="30" rx="1.5"><title>${h.day(d.day_ms)}: ${d.uptime === null ? 'no data' : h.pct(d.uptime)}</title></rect>`;
  }).join('')}</svg>`;
}

function worst(states) {
  if (states.includes('down')) return 'down';
  if (states.includes('degraded')) return 'degraded';
  if (states.length && states.every((s) => s === 'no_data')) return 'no_data';
  return 'up';
}

function view(h, page) {
  const { esc } = h;
  const names = new Map(page.checks.map((c) => [c.name, c.display_name]));
  const overall = worst(page.checks.map((c) => worst(c.regions.map((r) => r.state))));
  const affected = page.checks.filter((c) => worst(c.regions.map((r) => r.state)) === overall)
    .map((c) => `${c.display_name} (${c.regions.filter((r) => r.state === overall).map((r) => r.region).join(', ')})`);
  const shown = affected.slice(0, 3).join(', ') + (affected.length > 3 ? ` and ${affected.length - 3} more` : '');
  const banner = {
    up: 'All systems operational', no_data: 'No data yet',
    degraded: `Degraded performance: ${shown}`, down: `Partial outage: ${shown}`,
  }[overall];
  const checks = page.checks.map((c) => {
    const state = worst(c.regions.map((r) => r.state));
    // Uptime by time over the days shown (the server's); a source without it: the mean of the days.
    const known = c.daily.filter((d) => d.uptime !== null);
    const uptime = c.uptime !== undefined ? c.uptime : known.length ? known.reduce((sum, d) => sum + d.uptime, 0) / known.length : null;
    const asOf = page.uptime_as_of_ms ? ` title="As of ${h.time(page.uptime_as_of_ms)}"` : '';
    return `<div class="svc" data-check="${esc(c.name)}"><div class="top-line"><span class="name">${esc(c.display_name)}</span><span class="badge ${state}">${h.STATE_LABEL[state]}</span></div>
      <div class="regions">${c.regions.map((r) => `<span data-region="${esc(r.region)}" class="s${h.STATES.indexOf(r.state)}"><i class="dot"></i>${esc(r.region)}</span>`).join('')}</div>
      ${bars(h, c.daily)}<div class="scale"><span>${c.daily.length} days ago</span><span${asOf}>${h.pct(uptime)} uptime</span><span>today</span></div></div>`;
  }).join('');
  const incidents = page.incidents.map((i) => {
    const ongoing = i.resolved_at_ms === null;
    const lasted = ongoing ? `ongoing for ${h.span((page.now_ms - i.started_at_ms) / 1000)}` : `lasted ${h.span((i.resolved_at_ms - i.started_at_ms) / 1000)}`;
    const affected = i.checks.map((c) => names.get(c) || c).join(', ');
    return `<div class="incident"><h3><span class="badge ${esc(i.state)}">${ongoing ? 'Ongoing' : 'Resolved'}</span>${esc(i.title)}</h3>
      <div class="muted">${h.time(i.started_at_ms)} · ${lasted} · ${esc(affected)}${i.regions.length ? ` in ${esc(i.regions.join(', '))}` : ''}</div>${i.summary ? i.summary.split('\n').map((line) => `<p>${esc(line)}</p>`).join('') : ''}</div>`;
  }).join('');
  const maintenance = (page.maintenance || []).map((m) => {
    const affected = m.checks.map((c) => names.get(c) || c).join(', ');
    const what = m.mode === 'pause' ? 'not monitored while it lasts' : 'monitored; alerts held';
    const when = m.active ? `until ${h.time(m.end_ms)}` : `${h.time(m.start_ms)} to ${h.time(m.end_ms)}`;
    return `<div class="incident maintenance"><h3><span class="badge">${m.active ? 'In progress' : 'Scheduled'}</span>Maintenance: ${esc(affected)}</h3>
      <div class="muted">${when} · ${h.span((m.end_ms - m.start_ms) / 1000)} · ${what}</div></div>`;
  }).join('');
  const inProgress = (page.maintenance || []).filter((m) => m.active);
  const note = inProgress.length && overall !== 'down'
    ? `<div class="banner maintenance" role="status">Maintenance in progress: ${esc(inProgress.map((m) => m.checks.map((c) => names.get(c) || c).join(', ')).join('; '))}</div>` : '';
  document.title = page.title;
  return `<h1>${esc(page.title)}</h1><div class="banner ${overall}" role="status">${esc(banner)}</div>${note}
    ${maintenance ? `<section class="card"><h2>Scheduled maintenance</h2>${maintenance}</section>` : ''}
    <section class="card">${checks || '<p class="muted">Nothing is shown here yet.</p>'}</section>
    <section class="card"><h2>Incident history</h2>${incidents || '<p class="muted">No incidents.</p>'}</section>`;
}

export function run(h) {
  async function load() {
    h.main.innerHTML = view(h, await h.api('/api/ui/status'));
  }
  load().then(h.ready, h.fail);
  setInterval(() => { if (!document.hidden) load().catch(() => {}); }, REFRESH_MS);
}
