// A score timeline under a <video>: smoothed and raw scores, threshold line, events shaded, and a cursor.
// Both ways: clicking the timeline seeks the video; playing moves the cursor (timeupdate + requestAnimationFrame).

const COLORS = {
  background: '#ffffff', grid: '#e5e7eb', raw: '#9ca3af', smoothed: '#1d4ed8',
  threshold: '#dc2626', event: 'rgba(220, 38, 38, 0.22)',
};

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
    this.scores = (result.scores || []).map(Number);
    this.smoothed = (result.smoothed || result.scores || []).map(Number);
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

  /** Score range on the y axis: [0, 1] widened to the data and the threshold. */
  yRange() {
    const values = this.smoothed.concat(this.scores).filter(Number.isFinite);
    const threshold = Number(this.result.threshold);
    if (Number.isFinite(threshold)) values.push(threshold);
    const lo = Math.min(0, ...values);
    const hi = Math.max(1, ...values);
    return [lo, hi + (hi - lo) * 0.05];
  }

  draw() {
    const ratio = window.devicePixelRatio || 1;
    const width = this.container.clientWidth;
    const height = this.container.clientHeight;
    if (!width || !height) return;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(height * ratio);
    const ctx = this.canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.fillStyle = COLORS.background;
    ctx.fillRect(0, 0, width, height);

    const duration = this.duration();
    const [lo, hi] = this.yRange();
    const x = (t) => (t / duration) * width;
    const y = (v) => height - ((v - lo) / (hi - lo)) * height;

    ctx.fillStyle = COLORS.event;
    for (const e of this.result.events || []) {
      const start = e.start_s ?? e.start_frame / this.fps;
      const end = e.end_s ?? (e.end_frame + 1) / this.fps;
      ctx.fillRect(x(start), 0, Math.max(x(end) - x(start), 1), height);
    }

    ctx.strokeStyle = COLORS.grid;
    ctx.lineWidth = 1;
    for (const v of [0, 0.5, 1]) line(ctx, [[0, y(v)], [width, y(v)]]);

    const points = (values) => values.map((v, i) => [x((i + 0.5) / this.fps), y(v)]);
    ctx.strokeStyle = COLORS.raw;
    ctx.lineWidth = 1;
    line(ctx, points(this.scores));
    ctx.strokeStyle = COLORS.smoothed;
    ctx.lineWidth = 2;
    line(ctx, points(this.smoothed));

    const threshold = Number(this.result.threshold);
    if (Number.isFinite(threshold)) {
      ctx.strokeStyle = COLORS.threshold;
      ctx.lineWidth = 1;
      ctx.setLineDash([5, 4]);
      line(ctx, [[0, y(threshold)], [width, y(threshold)]]);
      ctx.setLineDash([]);
    }
  }

  /** Smoothed score at time t (the frame shown then). */
  scoreAt(t) {
    const i = Math.min(Math.floor(t * this.fps), this.smoothed.length - 1);
    return i >= 0 ? this.smoothed[i] : undefined;
  }

  destroy() {
    this.destroyed = true;
    for (const [target, type, fn] of this.handlers) target.removeEventListener(type, fn);
    this.resizer.disconnect();
  }
}

function line(ctx, points) {
  const finite = points.filter(([, py]) => Number.isFinite(py));
  if (finite.length < 1) return;
  ctx.beginPath();
  finite.forEach(([px, py], i) => (i ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
  ctx.stroke();
}
