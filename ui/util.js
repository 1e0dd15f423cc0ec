// Small DOM and formatting helpers. Text always goes in as text (never as HTML),
// so nothing a job carries can inject markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const SVG = 'http://www.w3.org/2000/svg';
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'text') el.textContent = v;
    else el.setAttribute(k, String(v));
  }
  for (const c of children) if (c) el.append(c);
  return el;
}

export function clear(el) { while (el.firstChild) el.firstChild.remove(); return el; }

const nf = new Intl.NumberFormat();
export function num(n) { return n === null || n === undefined ? '–' : nf.format(n); }

export function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)) + ' ' + units[i];
}

export function duration(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return Math.round(ms) + ' ms';
  const s = ms / 1000;
  if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + ' s';
  const m = Math.floor(s / 60);
  if (m < 60) return m + 'm ' + Math.round(s % 60) + 's';
  const hr = Math.floor(m / 60);
  if (hr < 48) return hr + 'h ' + (m % 60) + 'm';
  return Math.floor(hr / 24) + 'd ' + (hr % 24) + 'h';
}

export function time(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const year = d.getFullYear() === new Date().getFullYear() ? undefined : 'numeric';
  return d.toLocaleString(undefined, { year, month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
}

export function clock(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
}

export function ago(iso, now = Date.now()) {
  if (!iso) return '–';
  const t = typeof iso === 'number' ? iso : Date.parse(iso);
  return duration(Math.max(0, now - t)) + ' ago';
}

export function badge(text, cls = text) { return h('span', { class: 'badge ' + cls, text: text.replace('_', ' ') }); }

// Ids of one queue share their first (time) and last (queue tag) digits, so a
// shortened id would hide what tells them apart: ids are shown whole.
export function shortId(id) { return id; }

export function toast(text) {
  const t = document.getElementById('toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

// A modal confirmation (keyboard: Tab between the buttons, Esc cancels, Enter
// confirms when the confirm button has the focus). Resolves true when confirmed.
export function confirmAction(title, text, okLabel = 'Confirm') {
  const d = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = okLabel;
  d.returnValue = 'cancel';
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.showModal();
    document.getElementById('confirm-cancel').focus();
  });
}

// Calls `fn` at most once per `ms`, the last call winning (live updates arrive in bursts).
export function throttle(fn, ms) {
  let timer = null;
  let last = 0;
  return () => {
    if (timer) return;
    const wait = Math.max(0, last + ms - Date.now());
    timer = setTimeout(() => { timer = null; last = Date.now(); fn(); }, wait);
  };
}

// Pretty JSON text of `text` (the text itself when it is not JSON).
export function prettyJson(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

// Re-renders `container` with `fn` and gives the focus back to the equivalent
// element (same row, same link or button), so live refreshes do not throw a
// keyboard user back to the top of the page.
export function keepFocus(container, fn) {
  const a = document.activeElement;
  let key = null;
  if (a && container.contains(a)) {
    const row = a.closest('[data-worker],[data-job],[data-queue]');
    key = {
      row: row ? (row.dataset.worker || row.dataset.job || row.dataset.queue) : null,
      href: a.getAttribute('href'), action: a.dataset.action, tag: a.tagName,
    };
  }
  fn();
  if (!key) return;
  for (const el of container.querySelectorAll(key.tag)) {
    const row = el.closest('[data-worker],[data-job],[data-queue]');
    const rowKey = row ? (row.dataset.worker || row.dataset.job || row.dataset.queue) : null;
    if (rowKey === key.row && el.getAttribute('href') === key.href && el.dataset.action === key.action) { el.focus({ preventScroll: true }); return; }
  }
}
