// vadkit viewer: lists on the left, detail on the right; routes are #/video/<id>, #/run/<id> and #/live/<stream>.
import { LiveView, liveSummary } from './live.js';
import { Timeline } from './timeline.js';

const $ = (selector, root = document) => root.querySelector(selector);
const state = { info: null, timeline: null, live: null, polling: null, liveListing: null, announced: new Set() };

/** An id like "runs/uploads/clip" as a URL path, each segment encoded. */
const encodePath = (id) => id.split('/').map(encodeURIComponent).join('/');

async function api(path) {
  const response = await fetch(path, { headers: { Accept: 'application/json' } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || `${response.status} ${response.statusText}`);
  return body;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
}

const secs = (t) => (Number.isFinite(Number(t)) ? Number(t).toFixed(2) : '–');
const fmt = (value, digits = 4) =>
  typeof value === 'number' ? (Number.isInteger(value) ? String(value) : value.toFixed(digits)) : String(value ?? '–');

// ------------------------------------------------------------------------------------------------ lists
async function loadLists() {
  const [videos, runs] = await Promise.all([api('/api/videos'), api('/api/runs')]);
  fillList($('#video-list'), videos, 'video', (v) => v.broken ? `broken: ${v.broken}` :
    `${v.num_events} event${v.num_events === 1 ? '' : 's'} · ${fmt(v.duration_s, 1)} s · ${v.model ?? ''}`);
  fillList($('#run-list'), runs, 'run', (r) => r.broken ? `broken: ${r.broken}` :
    `${r.method ?? ''} · ${r.dataset ?? ''} · AUC ${fmt(r.micro_auc, 3)}`);
  markCurrent();
}

function fillList(list, items, kind, describe) {
  list.replaceChildren();
  if (!items.length) list.append(el('li', { className: 'muted', textContent: 'none found' }));
  for (const item of items) {
    const link = el('a', { href: `#/${kind}/${item.id}`, textContent: item.name });
    link.dataset.id = item.id;
    list.append(el('li', {}, link, el('small', { textContent: describe(item) })));
  }
}

/** The live streams of `vadkit serve --watch-dir`, refreshed every 5 s (a new stream appears by itself). */
async function loadLiveList() {
  clearTimeout(state.liveListing);
  if (!state.info?.live) return;
  $('#live-section').hidden = false;
  const streams = await api('/api/live').catch(() => null);
  if (streams) {
    fillList($('#live-list'), streams, 'live', liveSummary);
    markCurrent();
  }
  state.liveListing = setTimeout(loadLiveList, 5000);
}

function markCurrent() {
  for (const link of document.querySelectorAll('#sidebar a[data-id]')) {
    link.classList.toggle('current', location.hash === link.getAttribute('href'));
  }
}

// ------------------------------------------------------------------------------------------------ routes
async function route() {
  state.timeline?.destroy();
  state.timeline = null;
  state.live?.destroy();
  state.live = null;
  markCurrent();
  const match = location.hash.match(/^#\/(video|run|live)\/(.+)$/);
  const detail = $('#detail');
  if (!match) {
    const hint = 'Pick a scored video or an evaluation run on the left.';
    detail.replaceChildren(el('p', { className: 'muted', textContent: hint }));
    return;
  }
  const [, kind, id] = match;
  try {
    if (kind === 'video') showVideo(await api(`/api/videos/${encodePath(id)}`));
    else if (kind === 'live') showLive(await api(`/api/live/${encodeURIComponent(id)}`));
    else showRun(await api(`/api/runs/${encodePath(id)}`));
  } catch (err) {
    detail.replaceChildren(el('p', { className: 'error', textContent: `Cannot open ${id}: ${err.message}` }));
  }
}

function showVideo(result) {
  const view = $('#video-view').content.cloneNode(true);
  $('.title', view).textContent = result.name;
  const model = result.model || {};
  $('.meta', view).textContent = [
    `${result.num_frames} frames at ${fmt(result.fps, 2)} fps (${fmt(result.duration_s, 1)} s)`,
    model.name && `model ${model.name}`, model.trained_on && `trained on ${model.trained_on}`,
    `threshold ${fmt(result.threshold, 3)}`,
  ].filter(Boolean).join(' · ');
  const video = $('#player', view);
  const urls = result.urls || {};
  if (urls.video) video.src = urls.video;
  else video.replaceWith(el('p', { className: 'error', textContent: 'This folder holds no annotated video.' }));

  const events = $('#events', view);
  for (const [i, e] of (result.events || []).entries()) {
    const text = `${secs(e.start_s)}–${secs(e.end_s)} s (frames ${e.start_frame}–${e.end_frame}), ` +
      `peak ${fmt(e.peak_score, 3)}` + (e.reason ? ` · boxed object at frame ${e.object_frame}: ${e.reason}` : '');
    const item = el('li', { className: 'event', tabIndex: 0, textContent: text });
    item.dataset.index = i;
    if (e.thumbnail_url) item.prepend(el('img', { src: e.thumbnail_url, alt: `event ${i + 1}`, loading: 'lazy' }));
    item.addEventListener('click', () => { if (video.isConnected) video.currentTime = e.start_s; });
    events.append(item);
  }
  if (!events.children.length) events.append(el('li', { className: 'muted', textContent: 'no events above the threshold' }));
  links($('.links', view), urls, { report: 'HTML report', csv: 'scores (CSV)', plot: 'plot (PNG)', video: 'annotated video' });

  $('#detail').replaceChildren(view);
  const readout = $('#readout');
  let timeline = null;
  timeline = new Timeline($('#timeline'), $('#player') || el('video'), result, (t) => {
    readout.textContent = `${secs(t)} s · frame ${Math.floor(t * (result.fps || 25))} · score ${fmt(timeline?.scoreAt(t), 3)}`;
  });
  state.timeline = timeline;
}

function showLive(page) {
  const view = $('#live-view').content.cloneNode(true);
  const live = new LiveView(view, page);
  $('#detail').replaceChildren(view);
  live.draw();
  state.live = live;
}

function showRun(run) {
  const view = $('#run-view').content.cloneNode(true);
  $('.title', view).textContent = run.name;
  $('.meta', view).textContent = [run.method, run.dataset, run.id].filter(Boolean).join(' · ');
  const { protocol = {}, ...metrics } = run.metrics || {};
  table($('#metrics', view), metrics);
  table($('#protocol', view), protocol);
  const plots = $('#plots', view);
  for (const [name, url] of Object.entries(run.images || {})) {
    const id = name.replace(/\.png$/, '');
    plots.append(el('figure', {}, el('img', { src: url, alt: name, id: `plot-${id}` }), el('figcaption', { textContent: name })));
  }
  links($('.links', view), run.texts || {}, {});
  $('#detail').replaceChildren(view);
}

/** {row: {column: value}} (a run's per_video): a table of its own, one row per video. */
function isRowTable(value) {
  const rows = value && typeof value === 'object' && !Array.isArray(value) ? Object.values(value) : [];
  return rows.length > 0 && rows.every((r) => r && typeof r === 'object' && !Array.isArray(r));
}

function rowTable(rows) {
  const columns = [...new Set(Object.values(rows).flatMap((r) => Object.keys(r)))];
  const head = el('tr', {}, el('th', { textContent: '' }), ...columns.map((c) => el('th', { textContent: c })));
  const body = Object.entries(rows).map(([name, r]) =>
    el('tr', {}, el('th', { textContent: name }), ...columns.map((c) => el('td', { textContent: fmt(r[c]) }))));
  return el('table', { className: 'rows' }, head, ...body);
}

function table(node, data) {
  for (const [key, value] of Object.entries(data)) {
    const cell = isRowTable(value) ? el('td', {}, rowTable(value))
      : value !== null && typeof value === 'object'
      ? el('td', {}, el('pre', { textContent: JSON.stringify(value, null, 1) }))
      : el('td', { textContent: fmt(value) });
    const row = el('tr', {}, el('th', { textContent: key }), cell);
    row.dataset.key = key;
    node.append(row);
  }
}

function links(node, urls, labels) {
  for (const [key, url] of Object.entries(urls)) {
    node.append(el('a', { href: url, target: '_blank', rel: 'noopener', textContent: labels[key] || key }), ' ');
  }
}

// ------------------------------------------------------------------------------------------------ upload
function upload(event) {
  event.preventDefault();
  const file = $('#upload-file').files[0];
  const status = $('#upload-status');
  if (!file) return;
  const limit = state.info?.max_upload_bytes;
  if (limit && file.size > limit) {
    status.textContent = `${file.name} is ${fmt(file.size / 1e6, 1)} MB; the limit is ${fmt(limit / 1e6, 1)} MB.`;
    return;
  }
  const form = new FormData();
  form.append('file', file);
  const xhr = new XMLHttpRequest();
  xhr.open('POST', '/api/upload');
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) status.textContent = `uploading ${file.name}: ${Math.round((100 * e.loaded) / e.total)}%`;
  };
  xhr.onload = () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
    if (xhr.status === 202) {
      status.textContent = `${file.name} uploaded; scoring in the background.`;
      $('#upload-form').reset();
      pollJobs();
    } else {
      status.textContent = `Upload refused (${xhr.status}): ${body.detail || xhr.statusText}`;
    }
  };
  xhr.onerror = () => { status.textContent = 'Upload failed: the server could not be reached.'; };
  xhr.send(form);
}

async function pollJobs() {
  clearTimeout(state.polling);
  const jobs = await api('/api/jobs').catch(() => []);
  const list = $('#job-list');
  list.replaceChildren();
  let active = false;
  for (const job of jobs) {
    const item = el('li', { className: `job ${job.state}` }, el('span', { textContent: job.name }));
    item.dataset.job = job.id;
    if (job.state === 'queued' || job.state === 'running') {
      active = true;
      const percent = `${job.state} ${Math.round(job.progress * 100)}%`;
      item.append(el('progress', { max: 1, value: job.progress }), el('small', { textContent: percent }));
    } else if (job.state === 'done') {
      item.append(el('a', { href: `#/video/${job.result}`, textContent: 'open' }));
    } else {
      item.append(el('small', { className: 'error', textContent: job.error || 'failed' }));
    }
    list.append(item);
    if (job.state === 'done' && !state.announced.has(job.id)) {
      state.announced.add(job.id);
      loadLists();
    }
  }
  if (active) state.polling = setTimeout(pollJobs, 500);
}

// ------------------------------------------------------------------------------------------------ start
async function start() {
  state.info = await api('/api/info').catch(() => null);
  if (state.info) {
    $('#folders').textContent = Object.values(state.info.folders).join(' · ');
    $('#upload-status').textContent = `${state.info.detector ? `scored with ${state.info.detector}; ` : ''}` +
      `up to ${fmt(state.info.max_upload_bytes / 1e6, 0)} MB`;
  }
  $('#upload-form').addEventListener('submit', upload);
  window.addEventListener('hashchange', route);
  await loadLists().catch((err) => {
    $('#video-list').replaceChildren(el('li', { className: 'error', textContent: err.message }));
  });
  await loadLiveList();
  await pollJobs();
  await route();
  document.body.dataset.ready = 'true';
}

start();
