// The HTTP API as the dashboard uses it: same origin, the API key (when the
// server wants one) from sessionStorage sent as `Authorization: Bearer`, errors
// as ApiError with the server's code and message.

const KEY = 'spool.api_key';

export function apiKey() { return sessionStorage.getItem(KEY) || ''; }
export function setApiKey(k) { if (k) sessionStorage.setItem(KEY, k); else sessionStorage.removeItem(KEY); }

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

function headers(extra = {}) {
  const h = { Accept: 'application/json', ...extra };
  const k = apiKey();
  if (k) h.Authorization = 'Bearer ' + k;
  return h;
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

async function request(method, path, { raw = false, signal } = {}) {
  const res = await fetch(path, { method, headers: headers(), signal, cache: 'no-store' });
  const text = await res.text();
  if (!res.ok) {
    let code = 'http_' + res.status;
    let message = res.statusText || 'request failed';
    try { const e = JSON.parse(text).error; code = e.code; message = e.message; } catch { /* not JSON */ }
    if (res.status === 401) onUnauthorized();
    throw new ApiError(res.status, code, message);
  }
  if (raw) return { text, size: Number(res.headers.get('content-length')) || new Blob([text]).size };
  return text ? JSON.parse(text) : {};
}

export const get = (path, opts) => request('GET', path, opts);
export const post = (path, opts) => request('POST', path, opts);
export const del = (path, opts) => request('DELETE', path, opts);
export const enc = encodeURIComponent;

// A job's Server-Sent Events, read with fetch so the Authorization header goes
// along (EventSource cannot send one). Calls onEvent({id, event, data}) for each;
// resolves with the last event id when the server ends the stream. `signal` aborts.
export async function streamEvents(jobId, lastId, onEvent, signal) {
  const h = headers({ Accept: 'text/event-stream' });
  if (lastId) h['Last-Event-ID'] = lastId;
  const res = await fetch('/api/jobs/' + enc(jobId) + '/events', { headers: h, signal, cache: 'no-store' });
  if (!res.ok) throw new ApiError(res.status, 'http_' + res.status, 'event stream refused');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let ev = { id: lastId || '', event: 'message', data: '' };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      let line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (ev.data !== '') {
          lastId = ev.id;
          onEvent({ id: ev.id, event: ev.event, data: ev.data.endsWith('\n') ? ev.data.slice(0, -1) : ev.data });
        }
        ev = { id: lastId, event: 'message', data: '' };
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let val = colon < 0 ? '' : line.slice(colon + 1);
      if (val.startsWith(' ')) val = val.slice(1);
      if (field === 'id') ev.id = val;
      else if (field === 'event') ev.event = val;
      else if (field === 'data') ev.data += val + '\n';
    }
  }
  return lastId;
}

// Live job_updates over the WebSocket, shared by every page: one connection,
// reconnected with backoff. subscribe(fn) returns an unsubscribe function.
const listeners = new Set();
const stateListeners = new Set();
let ws = null;
let backoff = 500;
let wanted = false;

function setState(s) { for (const fn of stateListeners) fn(s); }

function connect() {
  if (!wanted) return;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const k = apiKey();
  const url = proto + '//' + location.host + '/ws' + (k ? '?access_token=' + enc(k) : '');
  const sock = new WebSocket(url);
  ws = sock;
  sock.onopen = () => {
    backoff = 500;
    sock.send(JSON.stringify({ id: 1, type: 'subscribe_updates' }));
  };
  sock.onmessage = (m) => {
    let msg;
    try { msg = JSON.parse(m.data); } catch { return; }
    if (msg.type === 'subscribed') { setState('live'); return; }
    if (!msg.type || !msg.type.startsWith('job_')) return;
    for (const fn of listeners) fn(msg);
  };
  sock.onclose = () => {
    if (ws !== sock) return;
    ws = null;
    setState(wanted ? 'down' : 'connecting');
    if (wanted) setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 10000);
  };
}

export function startLive() { wanted = true; if (!ws) connect(); }
export function restartLive() {
  if (ws) { const old = ws; ws = null; old.onclose = null; old.close(); }
  setState('connecting');
  startLive();
}
export function onLiveState(fn) { stateListeners.add(fn); }
export function subscribe(fn) { listeners.add(fn); return () => listeners.delete(fn); }
