// Hand-drawn SVG charts: per-minute rates over a time window. No library.
import { s, num } from './util.js';

const hhmm = (ms) => { const d = new Date(ms); return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0'); };

// Buckets from GET /api/queues/{q}/history → per-minute counts over the last
// `minutes` minutes: one slot per minute, null where no history exists.
export function perMinute(history, field, minutes = 60, now = Date.parse(history.to)) {
  const end = Math.floor(now / 60000) * 60000 + 60000;
  const start = end - minutes * 60000;
  const slots = new Array(minutes).fill(null);
  for (const b of history.buckets) {
    const t = Date.parse(b.start);
    if (t < start || t >= end) continue;
    const i = Math.floor((t - start) / 60000);
    slots[i] = (slots[i] || 0) + b[field];
  }
  return { start, values: slots };
}

// A bar chart of one or two series ({values, cls}) over the same minute slots.
export function rateChart(series, { start, minutes = 60, label = '' } = {}) {
  const W = 320, H = 110, L = 30, R = 6, T = 8, B = 18;
  const iw = W - L - R, ih = H - T - B;
  let max = 0;
  for (const se of series) for (const v of se.values) if (v !== null && v > max) max = v;
  const top = max <= 4 ? 4 : niceCeil(max);
    const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label });
  svg.append(s('title', { text: label }));
  for (const f of [0, 0.5, 1]) {
    const yy = T + ih - ih * f;
    svg.append(s('line', { class: f === 0 ? 'axis' : 'gridline', x1: L, x2: W - R, y1: yy, y2: yy }));
    svg.append(s('text', { x: L - 4, y: yy + 3, 'text-anchor': 'end', text: num(Math.round(top * f)) }));
  }
  for (const m of [0, 15, 30, 45]) {
    svg.append(s('text', { x: L + (iw * m) / minutes, y: H - 4, 'text-anchor': 'start', text: m === 0 ? hhmm(start) : '-' + (minutes - m) + 'm' }));
  }
  svg.append(s('text', { x: W - R, y: H - 4, 'text-anchor': 'end', text: 'now' }));
  // Bars: one group per minute, one bar per series; a missing minute (no
  // history kept then) draws nothing.
  const gw = iw / minutes;
  const bw = Math.max(1, (gw - 1) / series.length);
  series.forEach((se, k) => {
    se.values.forEach((v, i) => {
      if (v === null || v === 0) return;
      const hgt = Math.max(1, (ih * v) / top);
      svg.append(s('rect', { class: 'b' + (k + 1), 'data-v': v, x: (L + gw * i + k * bw).toFixed(1), y: (T + ih - hgt).toFixed(1), width: bw.toFixed(2), height: hgt.toFixed(1) }));
    });
  });
  // Hover targets: one per minute, with the numbers as a tooltip.
  for (let i = 0; i < minutes; i++) {
    const parts = series.map((se) => se.name + ' ' + (se.values[i] === null ? '–' : num(se.values[i])));
    const r = s('rect', { class: 'hit', x: L + (iw * i) / minutes, y: T, width: iw / minutes, height: ih });
    r.append(s('title', { text: hhmm(start + i * 60000) + ' · ' + parts.join(' · ') + ' /min' }));
    svg.append(r);
  }
  return svg;
}

function niceCeil(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
