// Job: the status record, attempts, timestamps, worker, payload and result as
// formatted JSON (large ones truncated, with their size and a download), the
// error of each failed attempt, a live progress bar and event timeline (the
// job's Server-Sent Events); retry, cancel and delete with a confirmation.
import * as api from './api.js';
import { h, clear, badge, time, bytes, num, clock, prettyJson, confirmAction, toast, duration, shortId } from './util.js';

const SHOW_LIMIT = 64 * 1024;  // characters of payload/result shown inline
const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'expired']);

export function render(main, route) {
  const id = route.id;
  let alive = true;
  let deleting = false;  // a delete is on its way: no more fetches of the record
  let rec = null;
  let lastId = '';
  let streaming = false;
  const abort = new AbortController();
  const seen = new Set();
  const errors = [];

  const crumbs = h('div', { class: 'crumbs' }, h('a', { href: '#/', text: 'Overview' }), ' / job');
  const title = h('h1', {}, 'Job ', h('span', { class: 'mono', text: id }));
  const retryBtn = h('button', { class: 'btn', type: 'button', 'data-action': 'retry', text: 'Retry', disabled: true });
  const cancelBtn = h('button', { class: 'btn', type: 'button', 'data-action': 'cancel', text: 'Cancel', disabled: true });
  const deleteBtn = h('button', { class: 'btn danger', type: 'button', 'data-action': 'delete', text: 'Delete', disabled: true });
  const bar = h('div');
  const progress = h('div', { class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': 0, 'aria-label': 'Progress', 'data-test': 'progress' }, bar);
  const progressText = h('div', { class: 'muted', 'data-test': 'progress-text', text: '' });
  const fields = h('dl', { class: 'kv', 'data-test': 'record' });
  const timeline = h('ol', { class: 'timeline', 'data-test': 'timeline', 'aria-live': 'polite' });
  const attemptErrors = h('ol', { 'data-test': 'attempt-errors' }, h('li', { class: 'muted', 'data-empty': '', text: 'None.' }));
  const payloadBox = h('div', { 'data-test': 'payload-box' }, h('p', { class: 'muted', text: 'Loading…' }));
  const resultBox = h('div', { 'data-test': 'result-box' }, h('p', { class: 'muted', text: '–' }));
  const body = h('div', { 'data-test': 'job-body' });
  main.append(crumbs, title, h('div', { class: 'toolbar' }, retryBtn, cancelBtn, deleteBtn), body);
  body.append(
    h('section', { class: 'card', style: null }, h('h2', { text: 'Progress' }), progress, progressText),
    h('div', { class: 'grid' },
      h('section', { class: 'card' }, h('h2', { text: 'Status' }), fields),
      h('section', { class: 'card' }, h('h2', { text: 'Timeline' }), timeline)),
    h('section', { class: 'card', 'data-test': 'errors-card' }, h('h2', { text: 'Failed attempts' }), attemptErrors),
    h('div', { class: 'grid' },
      h('section', { class: 'card' }, h('h2', { text: 'Payload' }), payloadBox),
      h('section', { class: 'card' }, h('h2', { text: 'Result' }), resultBox)));

  function setProgress(pct, text) {
    const p = Math.max(0, Math.min(100, Math.round(pct)));
    bar.style.width = p + '%';
    progress.setAttribute('aria-valuenow', String(p));
    progress.dataset.value = String(p);
    if (text !== undefined) progressText.textContent = text;
  }

  function drawRecord() {
    const r = rec;
    clear(title).append('Job ', h('span', { class: 'mono', text: id }), ' ', badge(r.status));
    title.dataset.status = r.status;
    clear(crumbs).append(h('a', { href: '#/', text: 'Overview' }), ' / ', h('a', { href: '#/queues/' + api.enc(r.queue), text: r.queue }), ' / job');
    const row = (label, field, value) => [h('dt', { text: label }), h('dd', { 'data-field': field, text: value })];
    clear(fields).append(...[
      row('Status', 'status', r.status), row('Queue', 'queue', r.queue), row('Priority', 'priority', String(r.priority)),
      row('Attempts', 'attempts', `${r.attempts} of ${r.max_retries + 1}`),
      row('Created', 'created_at', time(r.created_at)), row('Scheduled for', 'scheduled_at', time(r.scheduled_at)),
      row('Started', 'started_at', time(r.started_at)), row('Finished', 'completed_at', time(r.completed_at)),
      [h('dt', { text: 'Worker' }), h('dd', { 'data-field': 'worker_id' }, r.worker_id ? h('a', { href: '#/workers', text: r.worker_id }) : '–')],
      row('Result', 'result_size_bytes', r.result_available ? bytes(r.result_size_bytes) : (r.status === 'expired' ? 'expired' : 'none')),
      row('Error', 'error_message', r.error_message || '–')].flat());
    if (r.started_at && r.completed_at) fields.append(...row('Ran for', 'run_time', duration(Date.parse(r.completed_at) - Date.parse(r.started_at))));
    // Dependencies: the jobs this one waits for, and those that wait for it.
    const links = (label, field, ids) => [h('dt', { text: label }), h('dd', { 'data-field': field },
      ...ids.flatMap((j, i) => [i ? ', ' : '', h('a', { class: 'mono', href: '#/jobs/' + j, text: shortId(j), title: j })]))];
    if (r.parents && r.parents.length) fields.append(...links('Depends on', 'parents', r.parents));
    if (r.children && r.children.length) fields.append(...links('Needed by', 'children', r.children));
    retryBtn.disabled = !(r.status === 'failed' || r.status === 'cancelled');
    cancelBtn.disabled = TERMINAL.has(r.status);
    deleteBtn.disabled = false;
    progress.classList.toggle('done', r.status === 'completed');
    progress.classList.toggle('bad', r.status === 'failed' || r.status === 'cancelled');
    if (r.status === 'completed') setProgress(100);
    else if (!streaming || progress.dataset.value === undefined) setProgress(r.progress);
  }

  function showJson(box, text, size, filename) {
    clear(box);
    const total = size || new Blob([text]).size;
    if (text.length > SHOW_LIMIT) {
      box.append(h('p', { class: 'muted', 'data-test': 'truncated', text: `${bytes(total)} (${num(total)} bytes); showing the first ${bytes(SHOW_LIMIT)}.` }));
      box.append(h('pre', { class: 'json', 'data-test': 'json', text: text.slice(0, SHOW_LIMIT) + '\n…' }));
    } else {
      box.append(h('p', { class: 'muted', text: bytes(total) }));
      box.append(h('pre', { class: 'json', 'data-test': 'json', tabindex: 0, text: prettyJson(text) }));
    }
    const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
    box.append(h('p', {}, h('a', { href: url, download: filename, 'data-test': 'download', text: 'Download ' + filename })));
  }

  async function loadPayload() {
    try {
      const p = await api.get('/api/jobs/' + api.enc(id) + '/payload', { raw: true });
      if (alive) showJson(payloadBox, p.text, p.size, id + '-payload.json');
    } catch (e) { if (alive) clear(payloadBox).append(h('p', { class: 'error', text: e.message })); }
  }

  let resultShown = false;
  async function loadResult() {
    if (!rec.result_available) {
      resultShown = false;
      clear(resultBox).append(h('p', { class: 'muted', text: rec.status === 'expired' ? 'The result outlived its TTL.' : 'No result yet.' }));
      return;
    }
    if (resultShown) return;
    resultShown = true;
    try {
      const r = await api.get('/api/jobs/' + api.enc(id) + '/result', { raw: true });
      if (alive) showJson(resultBox, r.text, rec.result_size_bytes || r.size, id + '-result.json');
    } catch (e) { resultShown = false; if (alive) clear(resultBox).append(h('p', { class: 'error', text: e.message })); }
  }

  async function loadRecord() {
    if (deleting) return false;
    try {
      rec = await api.get('/api/jobs/' + api.enc(id));
    } catch (e) {
      if (!alive) return false;
      clear(body).append(h('p', { class: 'error', 'data-test': 'missing', text: e.status === 404 ? 'No such job (it may have been deleted).' : e.message }));
      retryBtn.disabled = cancelBtn.disabled = deleteBtn.disabled = true;
      return false;
    }
    if (!alive) return false;
    drawRecord();
    loadResult();
    body.dataset.loaded = String(Date.now());
    return true;
  }

  function onEvent(e) {
    if (seen.has(e.id)) return;
    seen.add(e.id);
    let d = {};
    try { d = JSON.parse(e.data); } catch { /* keep {} */ }
    const li = h('li', { 'data-type': e.event, 'data-status': d.status || '', 'data-id': e.id },
      h('time', { text: d.ts ? clock(d.ts) : '' }),
      h('span', {}, e.event === 'progress'
        ? [h('b', { text: (d.progress ?? 0) + '%' }), d.message ? ' ' + d.message : '']
        : [badge(d.status || 'status'), d.attempt ? ` attempt ${d.attempt}` : '', d.worker_id ? ` on ${d.worker_id}` : '',
          d.manual ? ' (retried by hand)' : '', d.error ? [' — ', h('span', { class: 'error', text: d.error })] : '',
          d.duration_ms !== undefined ? ` · ran ${duration(d.duration_ms)}` : '']));
    timeline.append(li);
    timeline.scrollTop = timeline.scrollHeight;
    if (e.event === 'progress') setProgress(d.progress || 0, (d.progress || 0) + '%' + (d.message ? ' · ' + d.message : ''));
    if (e.event === 'status') {
      if (d.status === 'completed') setProgress(100, '100% · completed');
      else if (d.status === 'queued' || d.status === 'in_progress') setProgress(d.status === 'queued' ? 0 : Number(progress.dataset.value || 0), d.status.replace('_', ' '));
      else setProgress(Number(progress.dataset.value || 0), d.status);
      if (d.error) {
        errors.push(d);
        clear(attemptErrors).append(...errors.map((x) => h('li', {},
          h('b', { text: x.attempt ? `Attempt ${x.attempt}` : (x.status === 'failed' ? 'Final attempt' : 'Attempt') }), ' ',
          h('time', { class: 'muted', text: x.ts ? clock(x.ts) : '' }), ': ', h('span', { class: 'error', text: x.error }))));
      }
      loadRecord();
    }
  }

  async function follow() {
    if (streaming || !alive) return;
    streaming = true;
    timeline.dataset.streaming = 'true';
    try {
      for (;;) {
        lastId = await api.streamEvents(id, lastId, onEvent, abort.signal);
        if (!alive) return;
        if (!await loadRecord()) return;
        if (TERMINAL.has(rec.status)) break;  // the server ended the stream after the terminal event
      }
    } catch (e) {
      if (!alive || e.name === 'AbortError') return;
      setTimeout(() => { streaming = false; follow(); }, 1000);
      return;
    } finally {
      timeline.dataset.streaming = 'false';
    }
    streaming = false;
    timeline.dataset.ended = 'true';
  }

  retryBtn.addEventListener('click', async () => {
    if (!await confirmAction('Retry this job?', 'It goes back to its queue with a fresh attempt budget.', 'Retry')) return;
    try {
      await api.post('/api/jobs/' + api.enc(id) + '/retry');
      toast('Job requeued');
      resultShown = false;
      delete timeline.dataset.ended;
      await loadRecord();
      follow();
    } catch (e) { toast(e.message); }
  });
  cancelBtn.addEventListener('click', async () => {
    if (!await confirmAction('Cancel this job?', 'A waiting job is cancelled at once; a running one is stopped by its worker.', 'Cancel job')) return;
    try {
      const r = await api.post('/api/jobs/' + api.enc(id) + '/cancel');
      toast(r.message);
      loadRecord();
    } catch (e) { toast(e.message); }
  });
  deleteBtn.addEventListener('click', async () => {
    if (!await confirmAction('Delete this job?', 'Its record, result and events are deleted (a running job is cancelled first). This cannot be undone.', 'Delete')) return;
    try {
      const queue = rec ? rec.queue : '';
      // From here the record is going: an event for this job (the delete makes one)
      // must not fetch it again, which would be a 404.
      deleting = true;
      await api.del('/api/jobs/' + api.enc(id));
      alive = false;
      abort.abort();
      toast('Job deleted');
      location.hash = queue ? '#/queues/' + api.enc(queue) : '#/';
    } catch (e) { deleting = false; toast(e.message); }
  });

  (async () => {
    if (!await loadRecord()) return;
    loadPayload();
    follow();
  })();
  // Retried from elsewhere (another tab, the CLI) after its stream ended: follow it again.
  const unsub = api.subscribe((m) => {
    if (m.job_id !== id || streaming || !alive) return;
    delete timeline.dataset.ended;
    resultShown = false;
    loadRecord().then((ok) => { if (ok) follow(); });
  });
  return () => { alive = false; abort.abort(); unsub(); };
}
