// Audit log: every recorded action, newest first, with a filter. Entries are read in
// sequence order (the API pages forward with ?after=), the newest MAX_SHOWN kept, and
// each refresh fetches only what is new. The chain link (each entry's prev_hash is the
// hash of the entry before) is checked over what was read.
import { h, fill } from '../dom.js';
import { get } from '../api.js';
import { bus, debounce } from '../context.js';
import { time } from '../format.js';

const PAGE = 1000;
const MAX_PAGES = 50;  // one refresh reads at most this many pages
const MAX_SHOWN = 2000;
const REFRESH_MS = 10000;

export function mount(root) {
  const filter = h('input', { type: 'search', id: 'audit-filter', placeholder: 'filter: actor, action, app, release…' });
  const summary = h('p', { class: 'muted', id: 'audit-summary' });
  const verdict = h('span', { id: 'audit-verify-result' });
  const verify = h('button', { type: 'button', id: 'audit-verify', title: 'recompute every hash on the server' },
                   'Verify whole chain');
  verify.addEventListener('click', async () => {
    verify.disabled = true;
    fill(verdict, 'verifying…');
    try {
      const v = await get('/api/v1/audit/verify');
      verdict.className = v.ok ? 'ok-text' : 'bad-text';
      verdict.dataset.ok = String(v.ok);
      fill(verdict, v.ok ? `chain intact: ${v.entries} entries verified by the server`
                         : `chain broken at entry #${v.first_bad_seq}: ${v.reason}`);
    } catch (e) {
      verdict.className = 'bad-text';
      fill(verdict, `verification failed: ${e.message}`);
    } finally {
      verify.disabled = false;
    }
  });
  const body = h('div', { id: 'audit' }, h('p', { class: 'muted' }, 'loading…'));
  fill(root, h('h1', null, 'Audit log'), h('div', { class: 'toolbar' }, filter, verify, verdict), summary, body);
  let entries = [];  // ascending by seq
  let lastSeq = 0;
  let broken = null;  // first seq whose prev_hash does not match
  let stopped = false;
  let busy = false;

  async function fetchNew() {
    if (busy || stopped) return;
    busy = true;
    try {
      for (let page = 0; page < MAX_PAGES; page++) {
        const data = await get(`/api/v1/audit?after=${lastSeq}&limit=${PAGE}`);
        if (stopped) return;
        for (const e of data.entries) {
          const prev = entries[entries.length - 1];
          if (prev && prev.seq === e.seq - 1 && e.prev_hash !== prev.hash && broken === null) broken = e.seq;
          entries.push(e);
          lastSeq = Math.max(lastSeq, e.seq);
        }
        if (entries.length > MAX_SHOWN) entries = entries.slice(entries.length - MAX_SHOWN);
        if (data.entries.length < PAGE) break;
      }
      render();
    } catch (e) {
      if (!stopped) fill(summary, `Loading the audit log failed: ${e.message}`);
    } finally {
      busy = false;
    }
  }

  function matches(e, words) {
    if (!words.length) return true;
    const text = [e.actor, e.action, e.app, e.env, e.release, e.source_addr, JSON.stringify(e.details)]
      .join(' ').toLowerCase();
    return words.every((w) => text.includes(w));
  }

  function render() {
    const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    const shown = entries.filter((e) => matches(e, words)).reverse();
    fill(summary, `${shown.length} of the newest ${entries.length} entries (last #${lastSeq}). `,
         broken === null ? 'Hash chain links intact over these entries.'
                         : h('b', { class: 'bad-text' }, `Hash chain link broken at entry #${broken}.`));
    if (!shown.length) {
      fill(body, h('p', { class: 'empty' }, 'No entries.'));
      return;
    }
    fill(body, h('table', { class: 'grid audit' },
      h('thead', null, h('tr', null, ['#', 'Time', 'Actor', 'Action', 'App', 'Env', 'Release', 'From', 'Details', 'Hash']
        .map((t) => h('th', null, t)))),
      h('tbody', null, shown.map((e) => {
        const details = e.details && Object.keys(e.details).length ? JSON.stringify(e.details) : '';
        return h('tr', { dataset: { seq: String(e.seq), action: e.action } },
          h('td', { class: 'num' }, String(e.seq)),
          h('td', null, time(e.time_ms)),
          h('td', null, e.actor),
          h('td', null, h('code', null, e.action)),
          h('td', null, e.app),
          h('td', null, e.env),
          h('td', null, e.release),
          h('td', null, e.source_addr),
          h('td', { class: 'details', title: details }, details.length > 160 ? `${details.slice(0, 160)}…` : details),
          h('td', { title: e.hash }, h('code', null, (e.hash || '').slice(0, 10))));
      }))));
  }

  filter.addEventListener('input', debounce(render, 150));
  const reload = debounce(fetchNew, 1000);
  const off = bus.on(() => reload());
  const timer = setInterval(fetchNew, REFRESH_MS);
  fetchNew();
  return () => {
    stopped = true;
    off();
    reload.cancel();
    clearInterval(timer);
  };
}
