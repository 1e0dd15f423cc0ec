// Overview: per queue, depth by state, paused flag, processed and failed per
// minute over the last hour (from the history the server keeps in Redis), wait
// and run time percentiles; Redis health and live workers.
import * as api from './api.js';
import { h, clear, num, bytes, duration, badge, throttle, time, shortId, keepFocus } from './util.js';
import { perMinute, rateChart } from './charts.js';

const STATES = [
  ['queued', 'Queued'], ['scheduled', 'Scheduled'], ['in_progress', 'In progress'],
  ['failed', 'Failed (dead)'], ['completed', 'Completed'], ['cancelled', 'Cancelled'],
];

export function render(main, route, session) {
  main.append(h('h1', { text: 'Overview' }));
  const body = h('div', { 'data-test': 'overview-body' }, h('p', { class: 'muted', text: 'Loading…' }));
  main.append(body);
  let alive = true;
  const refresh = async () => {
    if (!alive) return;
    try {
      const view = session.admin ? await adminView() : await tenantView();
      if (!alive) return;
      keepFocus(body, () => clear(body).append(view));
      body.dataset.loaded = String(Date.now());
    } catch (e) {
      if (alive) clear(body).append(h('p', { class: 'error', text: 'Could not load the overview: ' + e.message }));
    }
  };
  refresh();
  const soon = throttle(refresh, 2000);
  const unsub = api.subscribe(soon);
  // Charts move with time even when nothing happens: redraw each history bucket or so.
  const timer = setInterval(refresh, Math.max(10, session.history_bucket_seconds || 10) * 1000);
  return () => { alive = false; unsub(); clearInterval(timer); };
}

async function adminView() {
  const [queues, health, workers] = await Promise.all([
    api.get('/api/queues'), fetchHealth(), api.get('/api/workers'),
  ]);
  const histories = await Promise.all(queues.queues.map((q) =>
    api.get('/api/queues/' + api.enc(q.name) + '/history?minutes=60').catch(() => null)));
  const frag = document.createDocumentFragment();
  frag.append(h('div', { class: 'grid' }, redisCard(health), workersCard(workers.workers), totalsCard(queues.queues)));
  frag.append(h('h2', { text: 'Queues' }));
  if (queues.queues.length === 0) {
    frag.append(h('p', { class: 'muted', 'data-test': 'no-queues', text: 'No queues yet: submit a job to see one here.' }));
    return frag;
  }
  frag.append(queueTable(queues.queues));
  frag.append(h('div', { class: 'queue-cards' }, queues.queues.map((q, i) => queueCard(q, histories[i]))));
  return frag;
}

async function fetchHealth() {
  // /health answers 503 with a body when Redis is down; show that body.
  const res = await fetch('/health', { cache: 'no-store' });
  return res.json();
}

function redisCard(health) {
  const r = health.redis || {};
  return h('section', { class: 'card', 'data-test': 'redis', 'aria-labelledby': 'redis-h' },
    h('h2', { id: 'redis-h' }, 'Redis ', badge(r.connected ? 'connected' : 'down', r.connected ? 'live' : 'gone')),
    h('dl', { class: 'kv' },
      h('dt', { text: 'Version' }), h('dd', { 'data-field': 'version', text: r.version || '–' }),
      h('dt', { text: 'Memory' }), h('dd', { 'data-field': 'used_memory', 'data-value': r.used_memory, text: bytes(r.used_memory) }),
      h('dt', { text: 'Clients' }), h('dd', { 'data-field': 'connected_clients', text: num(r.connected_clients) }),
      h('dt', { text: 'Latency' }), h('dd', { 'data-field': 'latency_ms', text: r.latency_ms === undefined ? '–' : r.latency_ms.toFixed(2) + ' ms' }),
      h('dt', { text: 'Uptime' }), h('dd', { 'data-field': 'uptime', text: r.uptime_seconds ? duration(r.uptime_seconds * 1000) : '–' })));
}

function workersCard(list) {
  const slots = list.reduce((a, w) => a + w.concurrency, 0);
  const busy = list.reduce((a, w) => a + w.running, 0);
  return h('section', { class: 'card', 'data-test': 'workers' },
    h('h2', {}, h('a', { href: '#/workers', text: 'Workers' })),
    h('div', { class: 'stat', 'data-field': 'live-workers', text: String(list.length) }),
    h('div', { class: 'muted', text: `live · ${busy} of ${slots} slots busy` }));
}

function totalsCard(queues) {
  const sum = (k) => queues.reduce((a, q) => a + q.depth[k], 0);
  return h('section', { class: 'card', 'data-test': 'totals' },
    h('h2', { text: 'Jobs now' }),
    h('dl', { class: 'kv' },
      h('dt', { text: 'Waiting' }), h('dd', { text: num(sum('queued') + sum('scheduled')) }),
      h('dt', { text: 'Running' }), h('dd', { text: num(sum('in_progress')) }),
      h('dt', { text: 'Dead' }), h('dd', { text: num(sum('failed')) })));
}

function queueTable(queues) {
  return h('div', { class: 'table-wrap' }, h('table', { 'data-test': 'queues' },
    h('caption', { class: 'muted', hidden: true, text: 'Depth of each queue by state' }),
    h('thead', {}, h('tr', {}, h('th', { text: 'Queue' }), h('th', { text: 'State' }),
      STATES.map(([, label]) => h('th', { class: 'num', text: label })))),
    h('tbody', {}, queues.map((q) => h('tr', { 'data-queue': q.name },
      h('td', { 'data-field': 'name' }, h('a', { href: '#/queues/' + api.enc(q.name), text: q.name })),
      h('td', { 'data-field': 'paused' }, q.paused ? badge('paused') : badge('active', 'live')),
      STATES.map(([k]) => h('td', { class: 'num', 'data-field': k, 'data-value': q.depth[k] },
        h('a', { href: '#/queues/' + api.enc(q.name) + '?state=' + k, text: num(q.depth[k]) }))))))));
}

function queueCard(q, history) {
  const card = h('section', { class: 'card', 'data-test': 'queue-card', 'data-queue': q.name },
    h('h3', {}, h('a', { href: '#/queues/' + api.enc(q.name), text: q.name }), ' ', q.paused ? badge('paused') : null));
  if (!history) {
    card.append(h('p', { class: 'muted', text: 'No history yet.' }));
    return card;
  }
  const done = perMinute(history, 'completed');
  const failed = perMinute(history, 'failed');
  card.append(rateChart([
    { name: 'processed', values: done.values },
    { name: 'failed', values: failed.values },
  ], { start: done.start, label: `${q.name}: processed and failed jobs per minute, last hour` }));
  card.append(h('div', { class: 'legend' },
    h('span', { class: 'k1' }, 'processed/min · ', h('b', { 'data-field': 'completed-hour', 'data-value': history.totals.completed, text: num(history.totals.completed) }), ' in the hour'),
    h('span', { class: 'k2' }, 'failed/min · ', h('b', { 'data-field': 'failed-hour', 'data-value': history.totals.failed, text: num(history.totals.failed) }), ' in the hour')));
  const l = history.latency;
  const cell = (v, f) => h('span', { 'data-field': f, 'data-ms': v === null ? '' : v, text: v === null ? '–' : duration(v) });
  card.append(h('div', { class: 'pct', 'data-test': 'percentiles', title: `from the ${l.sample} most recently completed jobs` },
    h('span', { class: 'h' }), h('span', { class: 'h', text: 'p50' }), h('span', { class: 'h', text: 'p90' }),
    h('span', { class: 'h', text: 'p99' }), h('span', { class: 'h', text: 'max' }),
    h('span', { class: 'h', text: 'wait' }), cell(l.wait_ms.p50, 'wait-p50'), cell(l.wait_ms.p90, 'wait-p90'),
    cell(l.wait_ms.p99, 'wait-p99'), cell(l.wait_ms.max, 'wait-max'),
    h('span', { class: 'h', text: 'run' }), cell(l.run_ms.p50, 'run-p50'), cell(l.run_ms.p90, 'run-p90'),
    cell(l.run_ms.p99, 'run-p99'), cell(l.run_ms.max, 'run-max')));
  card.append(h('p', { class: 'muted', text: `percentiles of the last ${l.sample} completed jobs` }));
  return card;
}

async function tenantView() {
  const [jobs, workers] = await Promise.all([api.get('/api/jobs?limit=25'), api.get('/api/workers')]);
  const frag = document.createDocumentFragment();
  frag.append(h('p', { class: 'notice', 'data-test': 'tenant-notice', text:
    'Queue depths and charts count every tenant\'s jobs, so they need an admin key. Here are your own jobs.' }));
  frag.append(h('div', { class: 'grid' }, workersCard(workers.workers)));
  const queues = [...new Set(jobs.jobs.map((j) => j.queue))].sort();
  frag.append(h('h2', { text: 'Your queues' }));
  frag.append(h('p', { 'data-test': 'tenant-queues' }, queues.length === 0 ? h('span', { class: 'muted', text: 'No jobs yet.' }) :
    queues.map((q, i) => [i ? ' · ' : '', h('a', { href: '#/queues/' + api.enc(q), text: q })])));
  frag.append(h('h2', { text: 'Your recent jobs' }));
  frag.append(h('div', { class: 'table-wrap' }, h('table', { 'data-test': 'jobs' },
    h('thead', {}, h('tr', {}, ['Job', 'Queue', 'Status', 'Created'].map((t) => h('th', { text: t })))),
    h('tbody', {}, jobs.jobs.map((j) => h('tr', { 'data-job': j.job_id },
      h('td', { class: 'mono' }, h('a', { href: '#/jobs/' + j.job_id, text: shortId(j.job_id), title: j.job_id })),
      h('td', { text: j.queue }), h('td', {}, badge(j.status)), h('td', { text: time(j.created_at) })))))));
  return frag;
}
