// Workers: host, pid, queues, concurrency, running jobs (linked), heartbeat age,
// started at. A worker whose heartbeat stopped is shown as late, and as gone
// once the server no longer lists it (its registration expired).
import * as api from './api.js';
import { h, clear, badge, time, ago, shortId, throttle, keepFocus } from './util.js';

const LATE_MS = 5000;  // workers heartbeat every 2 s: missing two means trouble

export function render(main) {
  let alive = true;
  const known = new Map();  // id -> {worker, gone}
  const body = h('div', { 'data-test': 'workers-body' }, h('p', { class: 'muted', text: 'Loading…' }));
  const summary = h('p', { class: 'muted', 'data-test': 'summary' });
  main.append(h('h1', { text: 'Workers' }), summary, body);

  function draw() {
    const now = Date.now();
    const rows = [...known.values()].sort((a, b) => (a.gone - b.gone) || a.worker.id.localeCompare(b.worker.id));
    const liveCount = rows.filter((r) => !r.gone).length;
    summary.textContent = `${liveCount} live worker${liveCount === 1 ? '' : 's'}` + (rows.length > liveCount ? `, ${rows.length - liveCount} gone` : '');
    summary.dataset.live = String(liveCount);
    if (rows.length === 0) {
      clear(body).append(h('p', { class: 'muted', 'data-test': 'empty', text: 'No workers are running.' }));
      return;
    }
    keepFocus(body, () => clear(body).append(h('div', { class: 'table-wrap' }, h('table', { 'data-test': 'workers' },
      h('thead', {}, h('tr', {}, ['State', 'Worker', 'Host', 'PID', 'Queues', 'Concurrency', 'Running jobs', 'Heartbeat', 'Started'].map((t) => h('th', { text: t })))),
      h('tbody', {}, rows.map(({ worker: w, gone }) => {
        const age = now - Date.parse(w.last_heartbeat);
        const state = gone ? 'gone' : age > LATE_MS ? 'late' : 'live';
        return h('tr', { 'data-worker': w.id, 'data-state': state, 'data-hb': w.last_heartbeat, class: gone ? 'gone' : '' },
          h('td', { 'data-field': 'state' }, badge(state)),
          h('td', { class: 'mono', 'data-field': 'id', text: w.id }),
          h('td', { 'data-field': 'host', text: w.host }),
          h('td', { class: 'num', 'data-field': 'pid', text: String(w.pid) }),
          h('td', { 'data-field': 'queues', text: w.queues.join(', ') }),
          h('td', { class: 'num', 'data-field': 'concurrency', text: String(w.concurrency) }),
          h('td', { 'data-field': 'running' }, gone ? '–' : w.running_jobs.length === 0 ? h('span', { class: 'muted', text: 'idle' }) :
            w.running_jobs.map((id, i) => [i ? ', ' : '', h('a', { class: 'mono', href: '#/jobs/' + id, title: id, text: shortId(id) })])),
          h('td', { 'data-field': 'heartbeat', title: w.last_heartbeat, text: ago(w.last_heartbeat, now) }),
          h('td', { 'data-field': 'started_at', text: time(w.started_at) }));
      }))))));
    body.dataset.loaded = String(now);
  }

  // Heartbeat ages move on between refreshes: updated in place, once a second.
  function tick() {
    const now = Date.now();
    for (const tr of body.querySelectorAll('tr[data-worker]')) {
      const cell = tr.querySelector('[data-field="heartbeat"]');
      if (cell) cell.textContent = ago(tr.dataset.hb, now);
      if (tr.dataset.state === 'gone') continue;
      const state = now - Date.parse(tr.dataset.hb) > LATE_MS ? 'late' : 'live';
      if (state !== tr.dataset.state) {
        tr.dataset.state = state;
        clear(tr.querySelector('[data-field="state"]')).append(badge(state));
      }
    }
  }

  async function refresh() {
    if (!alive) return;
    try {
      const r = await api.get('/api/workers');
      if (!alive) return;
      const listed = new Set(r.workers.map((w) => w.id));
      for (const w of r.workers) known.set(w.id, { worker: w, gone: false });
      for (const [id, k] of known) if (!listed.has(id)) k.gone = true;
      draw();
    } catch (e) {
      if (alive) clear(body).append(h('p', { class: 'error', text: 'Could not load the workers: ' + e.message }));
    }
  }
  refresh();
  // Jobs starting and finishing change what workers run; a heartbeat is not an
  // event, so the list is also re-read every few seconds (to see workers come and go).
  const soon = throttle(refresh, 1000);
  const unsub = api.subscribe((m) => { if (m.type === 'job_started' || m.type === 'job_completed' || m.type === 'job_failed' || m.type === 'job_cancelled') soon(); });
  const timer = setInterval(refresh, 3000);
  const ticker = setInterval(tick, 1000);
  return () => { alive = false; unsub(); clearInterval(timer); clearInterval(ticker); };
}
