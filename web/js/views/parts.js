// Pieces several views draw: state badges and the traffic-split bar.
import { h } from '../dom.js';
import { stateClass } from '../format.js';

export function badge(state) {
  return h('span', { class: stateClass(state), dataset: { state } }, state.replace('_', ' '));
}

// split: [{release, weight (0-1)}]; a bar with one segment per release that takes
// traffic, and a legend listing every release with its share.
export function splitBar(split, colorOf) {
  const bar = h('div', { class: 'split-bar', role: 'img' });
  const legend = h('ul', { class: 'split-legend' });
  const words = [];
  for (const { release, weight } of split) {
    const pct = Math.round(weight * 1000) / 10;
    words.push(`${release} ${pct}%`);
    if (weight > 0) {
      const seg = h('div', { class: 'split-seg', dataset: { release }, title: `${release}: ${pct}%` },
                    weight >= 0.08 ? `${release} ${pct}%` : '');
      seg.style.width = `${weight * 100}%`;  // CSSOM, allowed by the CSP (no inline style)
      seg.style.background = colorOf(release);
      bar.append(seg);
    }
    const swatch = h('span', { class: 'swatch' });
    swatch.style.background = colorOf(release);
    legend.append(h('li', { class: 'split-item', dataset: { release, weight: String(pct) } },
                    swatch, h('b', null, release), ` ${pct}%`));
  }
  bar.setAttribute('aria-label', `traffic split: ${words.join(', ') || 'no routes'}`);
  if (!split.length) bar.append(h('div', { class: 'split-empty' }, 'no traffic routed'));
  return h('div', { class: 'split' }, bar, legend);
}
