// Queue: its jobs by state, newest first, paginated; search by id or unique_key;
// pause/resume; retry every dead job; purge completed jobs.
import * as api from './api.js';
import { h, clear, num, badge, time, shortId, throttle, confirmAction, toast, keepFocus } from './util.js';

const PAGE = 25;
const TABS = [
  ['', 'All'], ['queued', 'Queued'], ['scheduled', 'Scheduled'], ['in_progress', 'In progress'],
  ['completed', 'Completed'], ['failed', 'Failed'], ['cancelled', 'Cancelled'], ['waiting', 'Waiting for parents'],
];

export function render(main, route, session) {
  const name = route.name;
  const state = route.params.get('state') || '';
  const search = route.params.get('q') || '';
  const cursors = [];  // cursors of the pages before this one (Previous)
  let cursor = '';
  let alive = true;
  let info = null;     // this queue in GET /api/queues (admin keys only)

  const title = h('h1', {}, h('span', { 'data-test': 'queue-name', text: name }));
  const toolbar = h('div', { class: 'toolbar' });
  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Job states' });
  const results = h('div', { 'data-test': 'queue-body' });
  const pager = h('div', { class: 'pager' });
  main.append(h('div', { class: 'crumbs' }, h('a', { href: '#/', text: 'Overview' }), ' / queue'), title, toolbar, tabs, results, pager);

  const link = (params) => {
    const p = new URLSearchParams(params);
    for (const [k, v] of [...p]) if (!v) p.delete(k);
    const q = p.toString();
    return '#/queues/' + api.enc(name) + (q ? '?' + q : '');
  };

  // ---- toolbar
  const pauseBtn = h('button', { class: 'btn', type: 'button', 'data-action': 'pause', hidden: !session.admin });
  const retryBtn = h('button', { class: 'btn', type: 'button', 'data-action': 'retry-dead', text: 'Retry all dead' });
  const purgeBtn = h('button', { class: 'btn', type: 'button', 'data-action': 'purge-completed', text: 'Purge completed' });
  const input = h('input', { type: 'search', name: 'q', value: search, placeholder: 'Job id or unique_key', 'aria-label': 'Search jobs by id or unique_key' });
  const form = h('form', { class: 'search', role: 'search' }, input, h('button', { class: 'btn', type: 'submit', text: 'Search' }));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    location.hash = link({ state, q: input.value.trim() });
  });
  toolbar.append(pauseBtn, retryBtn, purgeBtn, h('span', { class: 'spacer' }), form);

  pauseBtn.addEventListener('click', async () => {
    const paused = info && info.paused;
    if (!paused && !await confirmAction('Pause ' + name + '?', 'Workers stop claiming jobs from this queue until it is resumed. Submits are still accepted.', 'Pause')) return;
    try {
      await api.post('/api/queues/' + api.enc(name) + (paused ? '/resume' : '/pause'));
      toast(paused ? 'Queue resumed' : 'Queue paused');
      refresh();
    } catch (e) { toast(e.message); }
  });
  retryBtn.addEventListener('click', async () => {
    if (!await confirmAction('Retry every dead job?', `Every failed job of ${name}${session.admin ? '' : ' that is yours'} goes back to the queue with a fresh attempt budget.`, 'Retry all')) return;
    try {
      const r = await api.post('/api/queues/' + api.enc(name) + '/retry-dead');
      toast(`${num(r.retried)} job(s) requeued`);
      refresh();
    } catch (e) { toast(e.message); }
  });
  purgeBtn.addEventListener('click', async () => {
    if (!await confirmAction('Purge completed jobs?', `Every completed job of ${name}${session.admin ? '' : ' that is yours'} is deleted with its result. This cannot be undone.`, 'Purge')) return;
    try {
      const r = await api.post('/api/queues/' + api.enc(name) + '/purge-completed');
      toast(`${num(r.purged)} job(s) deleted`);
      refresh();
    } catch (e) { toast(e.message); }
  });

  function drawHeader() {
    clear(title).append(h('span', { 'data-test': 'queue-name', text: name }));
    if (info) title.append(info.paused ? badge('paused') : badge('active', 'live'));
    pauseBtn.textContent = info && info.paused ? 'Resume' : 'Pause';
    pauseBtn.dataset.paused = String(!!(info && info.paused));
    clear(tabs);
    for (const [k, label] of TABS) {
      const count = info ? (k ? (info.depth[k] ?? 0) : Object.values(info.depth).reduce((a, b) => a + b, 0)) : null;
      tabs.append(h('a', { href: link({ state: k }), 'aria-current': k === state && !search ? 'true' : 'false', 'data-state': k },
        label, count === null ? null : h('span', { class: 'count', text: num(count) })));
    }
  }

  function table(jobs) {
    if (jobs.length === 0) return h('p', { class: 'muted', 'data-test': 'empty', text: search ? 'No job matches.' : 'No jobs in this state.' });
    return h('div', { class: 'table-wrap' }, h('table', { 'data-test': 'jobs' },
      h('thead', {}, h('tr', {}, ['Job', 'Status', 'Priority', 'Attempts', 'Created', 'Started', 'Finished', 'Error'].map((t) => h('th', { text: t })))),
      h('tbody', {}, jobs.map((j) => h('tr', { 'data-job': j.job_id },
        h('td', { class: 'mono' }, h('a', { href: '#/jobs/' + j.job_id, text: shortId(j.job_id), title: j.job_id })),
        h('td', { 'data-field': 'status' }, badge(j.status)),
        h('td', { class: 'num', text: String(j.priority) }),
        h('td', { class: 'num', text: `${j.attempts}/${j.max_retries + 1}` }),
        h('td', { text: time(j.created_at) }),
        h('td', { text: time(j.started_at) }),
        h('td', { text: time(j.completed_at) }),
        h('td', { class: 'wrap', text: j.error_message ? j.error_message.slice(0, 160) : '' }))))));
  }

  async function refresh() {
    if (!alive) return;
    try {
      if (session.admin) {
        const qs = await api.get('/api/queues');
        info = qs.queues.find((q) => q.name === name) || null;
      }
      let page;
      if (search) {
        page = await api.get('/api/jobs/search?queue=' + api.enc(name) + '&q=' + api.enc(search));
        page.next_cursor = null;
      } else {
        page = await api.get('/api/jobs?queue=' + api.enc(name) + '&limit=' + PAGE + (state ? '&status=' + state : '') + (cursor ? '&cursor=' + api.enc(cursor) : ''));
      }
      if (!alive) return;
      drawHeader();
      keepFocus(results, () => {
      clear(results);
      if (search) results.append(h('p', {}, 'Jobs matching ', h('b', { text: search }), ' · ', h('a', { href: link({ state }), text: 'clear search' })));
      results.append(table(page.jobs));
      });
      results.dataset.loaded = String(Date.now());
      clear(pager);
      if (cursors.length) pager.append(h('button', { class: 'btn', type: 'button', 'data-action': 'prev', text: '← Newer', onclick: () => { cursor = cursors.pop(); refresh(); } }));
      pager.append(h('span', { class: 'muted', 'data-test': 'page', text: 'page ' + (cursors.length + 1) }));
      if (page.next_cursor) pager.append(h('button', { class: 'btn', type: 'button', 'data-action': 'next', text: 'Older →', onclick: () => { cursors.push(cursor); cursor = page.next_cursor; refresh(); } }));
    } catch (e) {
      if (alive) clear(results).append(h('p', { class: 'error', text: 'Could not load the jobs: ' + e.message }));
    }
  }
  drawHeader();
  refresh();
  const soon = throttle(refresh, 1500);
  const unsub = api.subscribe((m) => { if ((m.queue || '').split('#')[0] === name) soon(); });
  return () => { alive = false; unsub(); };
}
