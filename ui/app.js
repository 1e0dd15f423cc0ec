// The dashboard's shell: theme, sign-in, live-update indicator and the hash
// router (#/, #/queues/<name>, #/jobs/<id>, #/workers). Each page module exports
// render(main, route, session) and returns a function that stops it.
import * as api from './api.js';
import { h, clear } from './util.js';
import * as overview from './overview.js';
import * as queue from './queue.js';
import * as job from './job.js';
import * as workers from './workers.js';

const main = document.getElementById('main');
let stopPage = null;
let session = null;

// ---- theme: system preference unless the toggle chose one (kept in localStorage)
function applyTheme() {
  const t = localStorage.getItem('spool.theme');
  if (t === 'light' || t === 'dark') document.documentElement.dataset.theme = t;
  else delete document.documentElement.dataset.theme;
  const dark = t ? t === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
  const btn = document.getElementById('theme');
  btn.textContent = dark ? '☀ Light' : '☾ Dark';
  btn.setAttribute('aria-label', dark ? 'Switch to the light theme' : 'Switch to the dark theme');
}
document.getElementById('theme').addEventListener('click', () => {
  const dark = document.documentElement.dataset.theme
    ? document.documentElement.dataset.theme === 'dark'
    : matchMedia('(prefers-color-scheme: dark)').matches;
  localStorage.setItem('spool.theme', dark ? 'light' : 'dark');
  applyTheme();
});
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', applyTheme);
applyTheme();

// ---- live indicator
const live = document.getElementById('live');
api.onLiveState((state) => {
  live.dataset.state = state;
  live.textContent = state === 'live' ? 'live' : state === 'down' ? 'reconnecting' : 'connecting';
});

// ---- sign-in
const login = document.getElementById('login');
const loginForm = document.getElementById('login-form');
const loginError = document.getElementById('login-error');

function askForKey(message) {
  loginError.hidden = !message;
  loginError.textContent = message || '';
  document.getElementById('login-key').value = '';
  if (!login.open) login.showModal();
  document.getElementById('login-key').focus();
}
login.addEventListener('cancel', (e) => e.preventDefault());  // no way around signing in
loginForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const key = document.getElementById('login-key').value.trim();
  if (!key) return;
  api.setApiKey(key);
  const s = await api.get('/api/session');
  if (!s.authenticated) {
    api.setApiKey('');
    askForKey('That key is not known to this server.');
    return;
  }
  login.close();
  start(s);
});
api.setUnauthorizedHandler(() => { api.setApiKey(''); askForKey('Your key is no longer accepted.'); });

document.getElementById('signout').addEventListener('click', () => {
  api.setApiKey('');
  location.hash = '#/';
  location.reload();
});

// ---- router
function parseRoute() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  if (parts.length === 0) return { page: 'overview', params };
  if (parts[0] === 'queues' && parts[1]) return { page: 'queue', name: parts[1], params };
  if (parts[0] === 'jobs' && parts[1]) return { page: 'job', id: parts[1], params };
  if (parts[0] === 'workers') return { page: 'workers', params };
  return { page: 'missing', params };
}

const pages = { overview, queue, job, workers };

function route() {
  if (!session) return;
  if (stopPage) { stopPage(); stopPage = null; }
  const r = parseRoute();
  for (const a of document.querySelectorAll('[data-nav]'))
    a.toggleAttribute('aria-current', false);
  const navKey = r.page === 'queue' || r.page === 'job' ? 'overview' : r.page;
  const current = document.querySelector(`[data-nav="${navKey}"]`);
  if (current) current.setAttribute('aria-current', 'page');
  clear(main);
  const mod = pages[r.page];
  if (!mod) {
    main.append(h('h1', { text: 'Not found' }), h('p', {}, 'No such page. ', h('a', { href: '#/', text: 'Back to the overview' })));
    return;
  }
  main.dataset.page = r.page;
  stopPage = mod.render(main, r, session) || null;
}

window.addEventListener('hashchange', () => { route(); main.focus({ preventScroll: true }); });

function start(s) {
  session = s;
  const who = document.getElementById('who');
  if (s.auth) {
    who.hidden = false;
    who.textContent = s.admin ? 'admin' : 'tenant: ' + s.tenant;
    who.dataset.tenant = s.tenant || '';
    document.getElementById('signout').hidden = false;
  }
  api.restartLive();
  route();
}

(async () => {
  const s = await api.get('/api/session');
  if (s.auth && !s.authenticated) {
    api.setApiKey('');
    clear(main).append(h('p', { class: 'muted', text: 'Sign in to see this server\'s queues.' }));
    askForKey('');
    return;
  }
  start(s);
})().catch((e) => {
  clear(main).append(h('p', { class: 'error', text: 'Cannot reach the Spool API: ' + e.message }));
});
