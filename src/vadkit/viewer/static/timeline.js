// A score timeline under a <video>: smoothed and raw scores, threshold line, events shaded, and a cursor.
// Both ways: clicking the timeline seeks the video; playing moves the cursor (timeupdate + requestAnimationFrame).

export const COLORS = {
  background: '#ffffff', grid: '#e5e7eb', raw: '#9ca3af', smoothed: '#1d4ed8',
  threshold: '#dc2626', event: 'rgba(220, 38, 38, 0.22)', label: '#4b5563', labelBack: 'rgba(255, 255, 255, 0.8)',
};
const MARGIN = 0.08; // of the score span, added above and below the data and the threshold
const LABEL_FONT = '10px system-ui, sans-serif';

/** A score as a number; null, undefined and anything non-numeric become NaN (a gap), not 0. */
export const toScore = (v) => (v === null || v === undefined || v === '' ? NaN : Number(v));

export class Timeline {
  /**
   * @param {HTMLElement} container holds a <canvas> and a cursor element (position: absolute)
   * @param {HTMLVideoElement} video
   * @param {object} result the scored video's result.json
   * @param {(t: number) => void} onTime called with the current time whenever the cursor moves
   */
  constructor(container, video, result, onTime = () => {}) {
    this.container = container;
    this.canvas = container.querySelector('canvas');
    this.cursor = container.querySelector('.cursor');
    this.video = video;
    this.result = result;
    this.onTime = onTime;
    this.fps = result.fps > 0 ? result.fps : 25;
    this.scores = (result.scores || []).map(toScore);
    this.smoothed = (result.smoothed || result.scores || []).map(toScore);
    this.range = this.yRange();
    this.frame = 0;
    this.handlers = [
      [video, 'timeupdate', () => this.moveCursor()],
      [video, 'seeked', () => this.moveCursor()],
      [video, 'loadedmetadata', () => { this.draw(); this.moveCursor(); }],
      [video, 'play', () => this.follow()],
      [container, 'click', (e) => this.seek(e)],
    ];
    for (const [target, type, fn] of this.handlers) target.addEventListener(type, fn);
    this.resizer = new ResizeObserver(() => { this.draw(); this.moveCursor(); });
    this.resizer.observe(container);
    this.draw();
    this.moveCursor();
  }

  /** Seconds the timeline spans: the video's own duration once known, else the scores'. */
  duration() {
    const d = this.video.duration;
    if (Number.isFinite(d) && d > 0) return d;
    return this.result.duration_s || (this.smoothed.length / this.fps) || 1;
  }

  seek(event) {
    const rect = this.container.getBoundingClientRect();
    const fraction = Math.min(Math.max((event.clientX - rect.left) / rect.width, 0), 1);
    this.video.currentTime = fraction * this.duration();
    this.moveCursor();
  }

  follow() {
    const step = () => {
      this.moveCursor();
      if (!this.video.paused && !this.video.ended && !this.destroyed) requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  }

  moveCursor() {
    const t = this.video.currentTime || 0;
    const fraction = Math.min(t / this.duration(), 1);
    this.cursor.style.left = `${(fraction * 100).toFixed(3)}%`;
    this.onTime(t);
  }

  /**
   * Score range on the y axis: min and max over the finite scores (raw and smoothed) and the threshold, widened by
   * MARGIN of the span on each side. A constant series gets a span of 20% of its magnitude (1 around zero);
   * no finite value at all gives [0, 1].
   */
  yRange() {
    let lo = Infinity;
    let hi = -Infinity;
    const threshold = toScore(this.result.threshold);
    for (const values of [this.scores, this.smoothed, [threshold]]) {
      for (const v of values) {
        if (!Number.isFinite(v)) continue;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    if (!(lo <= hi)) return [0, 1];
    const span = hi - lo;
    if (!(span > Math.max(Math.abs(lo), Math.abs(hi)) * 1e-9)) {
      const half = Math.abs(hi) > 1e-12 ? Math.abs(hi) * 0.1 : 0.5;
      return [lo - half, hi + half];
    }
    return [lo - span * MARGIN, hi + span * MARGIN];
  }

  draw() {
    const surface = clearCanvas(this.canvas, this.container);
    if (!surface) return;
    const { ctx, width, height } = surface;

    const duration = this.duration();
    const [lo, hi] = this.range;
    const x = (t) => (t / duration) * width;
    const y = (v) => height - ((v - lo) / (hi - lo)) * height;
    // read-only hook for tests and tools: the score range the y axis spans (bottom, top) and the plot height (CSS px)
    Object.assign(this.canvas.dataset, { yMin: String(lo), yMax: String(hi), plotHeight: String(height) });

    ctx.fillStyle = COLORS.event;
    for (const e of this.result.events || []) {
      const start = e.start_s ?? e.start_frame / this.fps;
      const end = e.end_s ?? (e.end_frame + 1) / this.fps;
      ctx.fillRect(x(start), 0, Math.max(x(end) - x(start), 1), height);
    }

    // grid lines at round score values, kept clear of the top and bottom edges so their labels fit
    const { values: ticks, decimals } = niceTicks(lo, hi, Math.max(2, Math.min(6, Math.floor(height / 24))));
    const shown = ticks.filter((v) => y(v) >= 7 && y(v) <= height - 7);
    ctx.strokeStyle = COLORS.grid;
    ctx.lineWidth = 1;
    for (const v of shown) line(ctx, [[0, Math.round(y(v)) + 0.5], [width, Math.round(y(v)) + 0.5]]);

    const points = (values) => values.map((v, i) => [x((i + 0.5) / this.fps), y(v)]);
    drawScores(ctx, points(this.scores), points(this.smoothed), y(toScore(this.result.threshold)), width);

    // tick labels last, on a light backing, at the left edge
    ctx.font = LABEL_FONT;
    ctx.textBaseline = 'middle';
    for (const v of shown) {
      const text = v.toFixed(decimals);
      const w = ctx.measureText(text).width;
      const py = Math.round(y(v)) + 0.5;
      ctx.fillStyle = COLORS.labelBack;
      ctx.fillRect(1, py - 6, w + 4, 12);
      ctx.fillStyle = COLORS.label;
      ctx.fillText(text, 3, py);
    }
  }

  /** Smoothed score at time t (the frame shown then). */
  scoreAt(t) {
    const i = Math.min(Math.floor(t * this.fps), this.smoothed.length - 1);
    return i >= 0 && Number.isFinite(this.smoothed[i]) ? this.smoothed[i] : undefined;
  }

  destroy() {
    this.destroyed = true;
    for (const [target, type, fn] of this.handlers) target.removeEventListener(type, fn);
    this.resizer.disconnect();
  }
}

/**
 * Size a canvas to its container at the screen's pixel ratio and clear it; null while the container has no size.
 * Drawing then uses CSS pixels: `{ ctx, width, height }`.
 */
export function clearCanvas(canvas, container) {
  const ratio = window.devicePixelRatio || 1;
  const width = container.clientWidth;
  const height = container.clientHeight;
  if (!width || !height) return null;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.fillStyle = COLORS.background;
  ctx.fillRect(0, 0, width, height);
  return { ctx, width, height };
}

/** The raw scores (thin grey), the smoothed ones (thick blue) and the threshold (dashed red, at height `thresholdY`). */
export function drawScores(ctx, raw, smoothed, thresholdY, width) {
  ctx.strokeStyle = COLORS.raw;
  ctx.lineWidth = 1;
  line(ctx, raw);
  ctx.strokeStyle = COLORS.smoothed;
  ctx.lineWidth = 2;
  line(ctx, smoothed);
  if (Number.isFinite(thresholdY)) {
    ctx.strokeStyle = COLORS.threshold;
    ctx.lineWidth = 1;
    ctx.setLineDash([5, 4]);
    line(ctx, [[0, thresholdY], [width, thresholdY]]);
    ctx.setLineDash([]);
  }
}

/** A polyline; a point whose y is not finite (a null/NaN score) breaks it into separate runs (a gap). */
export function line(ctx, points) {
  ctx.beginPath();
  let run = 0;
  points.forEach(([px, py], i) => {
    if (!Number.isFinite(py)) { run = 0; return; }
    if (run === 0) {
      ctx.moveTo(px, py);
      const next = points[i + 1];
      // a lone finite point between gaps: a short tick so that it stays visible
      if (!next || !Number.isFinite(next[1])) ctx.lineTo(px + 1, py);
    } else {
      ctx.lineTo(px, py);
    }
    run += 1;
  });
  ctx.stroke();
}

/**
 * Round tick values inside [lo, hi]: a step of 1, 2 or 5 times a power of ten giving closest to `count` ticks (by
 * ratio), and the decimals that step needs (0.01 -> 2, 0.005 -> 3, 2 -> 0), so 0.04 / 0.05 / 0.06 read as such, not
 * as 0 / 0 / 0.
 */
export function niceTicks(lo, hi, count) {
  const span = hi - lo;
  if (!(span > 0) || !Number.isFinite(span)) return { values: [], decimals: 0 };
  const power = 10 ** Math.floor(Math.log10(span / count));
  const steps = [1, 2, 5, 10].map((m) => m * power);
  const off = (s) => Math.abs(Math.log(span / s / count)); // how far from `count` ticks, as a ratio
  const step = steps.reduce((best, s) => (off(s) < off(best) ? s : best));
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const values = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + 1e-9 * step; k++) values.push(k * step);
  return { values: values.map((v) => (Math.abs(v) < step * 1e-9 ? 0 : v)), decimals: Math.min(decimals, 12) };
}
