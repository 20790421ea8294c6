// A live page for one `vadkit watch` stream: the newest frame, the last minute of scores scrolling from right to
// left (smoothed and raw, the threshold, events shaded, gaps marked), the open event and the recent closed ones.
// Fed by the server's event stream (/api/live/<stream>/events); the browser's EventSource reconnects by itself.
import { COLORS, clearCanvas, drawScores, line, niceTicks, toScore } from './timeline.js';

const WINDOW_S = 60; // seconds of scores on screen
const KEEP_FACTOR = 1.5; // rows kept beyond the window, so a resize or a late row still has data

const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
};
const fmt = (v, digits = 3) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '–');

/** The one-line state of a stream, the same words in the sidebar and on the page (both from one status). */
export const liveSummary = (s) =>
  `${s.state ?? '?'} · ${s.open_event ? 'EVENT OPEN · ' : ''}${s.events ?? 0} event${s.events === 1 ? '' : 's'}`;

export class LiveView {
  /**
   * @param {DocumentFragment} view a clone of the #live-view template, not yet in the page
   * @param {object} page /api/live/<stream>: status, rows, recent_events, frame_url, resume
   */
  constructor(view, page) {
    this.id = page.id;
    this.root = view.querySelector('.live-view');
    this.frame = view.querySelector('#live-frame');
    this.canvas = view.querySelector('#live-canvas');
    this.box = view.querySelector('#live-timeline');
    this.statusLine = view.querySelector('#live-status');
    this.openLine = view.querySelector('#live-open');
    this.eventList = view.querySelector('#live-events');
    view.querySelector('.title').textContent = page.name;
    this.frames = []; // [frame, score, smoothed]
    this.gaps = []; // frame indices after which the stream was lost
    this.events = new Map(); // number -> closed event
    this.status = page;
    this.addRows(page.rows || []);
    for (const e of page.recent_events || []) this.events.set(e.number, e);
    if (page.frame_url) this.frame.src = page.frame_url;
    this.showStatus();
    this.showEvents();
    this.resizer = new ResizeObserver(() => this.draw());
    this.resizer.observe(this.box);
    const { chunk, event } = page.resume || {};
    const query = new URLSearchParams();
    if (Number.isInteger(chunk)) query.set('chunk', chunk);
    if (Number.isInteger(event)) query.set('event', event);
    this.source = new EventSource(`/api/live/${encodeURIComponent(this.id)}/events?${query}`);
    this.source.addEventListener('scores', (m) => { this.addRows(JSON.parse(m.data).rows); this.draw(); });
    this.source.addEventListener('status', (m) => { this.status = JSON.parse(m.data); this.showStatus(); this.draw(); });
    this.source.addEventListener('event', (m) => {
      const e = JSON.parse(m.data);
      this.events.set(e.number, e);
      this.showEvents();
      this.draw();
    });
    this.source.addEventListener('frame', (m) => { this.frame.src = JSON.parse(m.data).url; });
    this.source.onopen = () => { this.root.dataset.connected = 'true'; };
    this.source.onerror = () => { this.root.dataset.connected = 'false'; };
  }

  destroy() {
    this.source.close();
    this.resizer.disconnect();
  }

  fps() {
    return this.status.fps > 0 ? this.status.fps : 25;
  }

  addRows(rows) {
    for (const row of rows) {
      if (row.gap) this.gaps.push(row.gap.after_frame);
      else if (Number.isInteger(row.frame)) this.frames.push([row.frame, toScore(row.score), toScore(row.smoothed)]);
    }
    const keep = Math.ceil(WINDOW_S * this.fps() * KEEP_FACTOR);
    if (this.frames.length > keep) this.frames.splice(0, this.frames.length - keep);
    const oldest = this.frames.length ? this.frames[0][0] : 0;
    this.gaps = this.gaps.filter((g) => g >= oldest - 1);
    this.root.dataset.lastFrame = String(this.lastFrame());
    this.root.dataset.rows = String(this.frames.length);
  }

  lastFrame() {
    return this.frames.length ? this.frames[this.frames.length - 1][0] : -1;
  }

  showStatus() {
    const s = this.status;
    const stale = s.age_s > 10 && s.state !== 'ended' && s.state !== 'stopped' ? ` (no update for ${Math.round(s.age_s)} s)` : '';
    this.statusLine.textContent = [
      `${s.state ?? '?'}${stale}`, s.source, `${fmt(s.fps, 1)} fps`, `${s.frames ?? 0} frames`,
      `${s.skipped_frames ?? 0} skipped`, `${s.gaps ?? 0} gap${s.gaps === 1 ? '' : 's'}`,
      `${s.events ?? 0} event${s.events === 1 ? '' : 's'}`, s.model && `model ${s.model}`,
      `threshold ${fmt(s.threshold)}`, s.error && `error: ${s.error}`,
    ].filter(Boolean).join(' · ');
    const open = s.open_event;
    this.openLine.textContent = open
      ? `EVENT OPEN since frame ${open.start_frame}, peak ${fmt(open.peak_score)} at frame ${open.peak_frame}`
      : 'no open event';
    this.openLine.classList.toggle('open', Boolean(open));
    this.root.dataset.open = open ? 'true' : 'false';
    // the sidebar's line for this stream follows every status, not only its own 5 s refresh
    for (const link of document.querySelectorAll('#live-list a[data-id]')) {
      if (link.dataset.id === this.id && link.nextElementSibling) link.nextElementSibling.textContent = liveSummary(s);
    }
  }

  showEvents() {
    const newest = [...this.events.values()].sort((a, b) => b.number - a.number).slice(0, 20);
    this.eventList.replaceChildren();
    for (const e of newest) {
      const text = `#${e.number + 1}: frames ${e.start_frame}–${e.end_frame}, peak ${fmt(e.peak_score)}` +
        (e.start ? ` · ${e.start.replace('T', ' ')}` : '');
      const item = el('li', { className: 'event' }, el('span', { textContent: text }));
      item.dataset.number = e.number;
      if (e.thumbnail_url) item.prepend(el('img', { src: e.thumbnail_url, alt: `event ${e.number + 1}` }));
      if (e.clip_url) item.append(' ', el('a', { href: e.clip_url, target: '_blank', rel: 'noopener', textContent: 'clip' }));
      this.eventList.append(item);
    }
    if (!newest.length) this.eventList.append(el('li', { className: 'muted', textContent: 'no closed events yet' }));
  }

  /** The last WINDOW_S seconds up to the newest scored frame, newest at the right edge. */
  draw() {
    const surface = clearCanvas(this.canvas, this.box);
    if (!surface) return;
    const { ctx, width, height } = surface;

    const span = WINDOW_S * this.fps();
    const last = this.lastFrame();
    const first = last - span + 1;
    const shown = this.frames.filter(([f]) => f >= first);
    const threshold = toScore(this.status.threshold);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of [threshold, ...shown.flatMap(([, s, m]) => [s, m])]) {
      if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    }
    if (!(lo < hi)) { lo = (Number.isFinite(lo) ? lo : 0) - 0.5; hi = lo + 1; }
    const pad = (hi - lo) * 0.08;
    lo -= pad; hi += pad;
    const x = (f) => ((f - first + 0.5) / span) * width;
    const y = (v) => height - ((v - lo) / (hi - lo)) * height;
    Object.assign(this.canvas.dataset, { yMin: String(lo), yMax: String(hi), first: String(first), last: String(last) });

    ctx.fillStyle = COLORS.event; // closed events in the window, and the open one up to now
    const spans = [...this.events.values()].map((e) => [e.start_frame, e.end_frame]);
    if (this.status.open_event) spans.push([this.status.open_event.start_frame, last]);
    for (const [a, b] of spans) {
      if (b < first || a > last) continue;
      ctx.fillRect(x(Math.max(a, first)) - 0.5 * width / span, 0, Math.max(x(b) - x(Math.max(a, first)) + width / span, 1), height);
    }
    const ticks = niceTicks(lo, hi, Math.max(2, Math.min(5, Math.floor(height / 24))));
    ctx.strokeStyle = COLORS.grid;
    ctx.lineWidth = 1;
    for (const v of ticks.values) line(ctx, [[0, Math.round(y(v)) + 0.5], [width, Math.round(y(v)) + 0.5]]);

    // a break in the lines wherever frames are missing (a gap, or skipped snippets)
    const points = (k) => {
      const out = [];
      shown.forEach((row, i) => {
        if (i > 0 && row[0] !== shown[i - 1][0] + 1) out.push([x(row[0] - 0.5), NaN]);
        out.push([x(row[0]), y(row[k])]);
      });
      return out;
    };
    drawScores(ctx, points(1), points(2), y(threshold), width);
    ctx.lineWidth = 1;
    ctx.strokeStyle = '#111827'; // gaps: a dotted vertical line where the stream was lost
    ctx.setLineDash([2, 3]);
    for (const g of this.gaps) if (g >= first) line(ctx, [[x(g + 0.5), 0], [x(g + 0.5), height]]);
    ctx.setLineDash([]);
    ctx.font = '10px system-ui, sans-serif';
    ctx.fillStyle = COLORS.label;
    ctx.textBaseline = 'top';
    ctx.fillText(`last ${WINDOW_S} s · frame ${last}`, 4, 2);
    for (const v of ticks.values) ctx.fillText(v.toFixed(ticks.decimals), width - 40, y(v) - 5);
    this.root.dataset.drawn = String(last);
  }
}
