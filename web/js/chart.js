// A time-series line chart on a <canvas>, drawn here (no chart library): one line per
// release over the last `windowMs`, y axis from 0 to a round number above the data,
// a gap where a release had no traffic, the newest value in the legend.

// The y axis for data up to x: its top, the smallest of 1, 2, 2.5, 5 × 10^k that is
// ≥ x, and a tick count that puts the grid lines on round values.
function niceScale(x) {
  if (!(x > 0)) return { max: 1, ticks: 5 };
  const p = 10 ** Math.floor(Math.log10(x));
  for (const [m, ticks] of [[1, 5], [2, 4], [2.5, 5], [5, 5], [10, 5]])
    if (m * p >= x * (1 - 1e-9)) return { max: m * p, ticks };
  return { max: 10 * p, ticks: 5 };
}

export class LineChart {
  // options: {title, format(value) -> label, minMax (smallest y range top)}
  constructor(canvas, options) {
    this.canvas = canvas;
    this.title = options.title;
    this.format = options.format;
    this.minMax = options.minMax || 1;
  }

  // series: Map release -> [{t, value}] (value null = no data); colorOf(release).
  draw(series, colorOf, now, windowMs) {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 400;
    const height = canvas.clientHeight || 180;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const g = canvas.getContext('2d');
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);

    const css = getComputedStyle(canvas);
    const ink = css.getPropertyValue('--chart-ink').trim() || '#445';
    const grid = css.getPropertyValue('--chart-grid').trim() || '#dde';
    const font = '12px system-ui, sans-serif';
    const left = 56;
    const right = 12;
    const top = 26;
    const bottom = 22;
    const plotW = Math.max(10, width - left - right);
    const plotH = Math.max(10, height - top - bottom);

    let max = 0;
    for (const points of series.values())
      for (const p of points) if (p.value !== null && p.t >= now - windowMs) max = Math.max(max, p.value);
    const { max: yMax, ticks } = niceScale(Math.max(max * 1.1, this.minMax));
    const x = (t) => left + ((t - (now - windowMs)) / windowMs) * plotW;
    const y = (v) => top + plotH - (v / yMax) * plotH;

    g.font = font;
    g.fillStyle = ink;
    g.textAlign = 'left';  // context state outlives a draw: set everything used
    g.textBaseline = 'alphabetic';
    g.fillText(this.title, left, 16);

    // Grid and y labels.
    g.strokeStyle = grid;
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (let i = 0; i <= ticks; i++) {
      const v = (yMax * i) / ticks;
      const yy = Math.round(y(v)) + 0.5;
      g.beginPath();
      g.moveTo(left, yy);
      g.lineTo(left + plotW, yy);
      g.stroke();
      g.fillText(this.format(v), left - 6, yy);
    }
    // x labels: seconds ago.
    g.textAlign = 'center';
    g.textBaseline = 'top';
    const stepS = windowMs >= 120000 ? 30 : 10;
    for (let s = 0; s * 1000 <= windowMs; s += stepS) {
      const xx = x(now - s * 1000);
      g.fillText(s === 0 ? 'now' : `-${s}s`, Math.min(Math.max(xx, left + 10), left + plotW - 10), top + plotH + 5);
    }

    // Lines, broken where there is no value.
    let any = false;
    g.save();
    g.beginPath();
    g.rect(left, top - 2, plotW, plotH + 4);
    g.clip();
    for (const [release, points] of series) {
      g.strokeStyle = colorOf(release);
      g.fillStyle = colorOf(release);
      g.lineWidth = 2;
      g.beginPath();
      let pen = false;
      let last = null;
      for (const p of points) {
        if (p.value === null) {
          pen = false;
          continue;
        }
        any = true;
        if (pen) g.lineTo(x(p.t), y(p.value));
        else g.moveTo(x(p.t), y(p.value));
        pen = true;
        last = p;
      }
      g.stroke();
      if (last) {
        g.beginPath();
        g.arc(x(last.t), y(last.value), 3, 0, 2 * Math.PI);
        g.fill();
      }
    }
    g.restore();

    // Legend: release and its newest value, right-aligned in the title row.
    g.textBaseline = 'alphabetic';
    g.textAlign = 'right';
    let lx = left + plotW;
    for (const [release, points] of [...series].reverse()) {
      const last = [...points].reverse().find((p) => p.value !== null);
      const label = `${release} ${last ? this.format(last.value) : '–'}`;
      g.fillStyle = ink;
      g.fillText(label, lx, 16);
      lx -= g.measureText(label).width + 6;
      g.fillStyle = colorOf(release);
      g.fillRect(lx - 10, 7, 10, 10);
      lx -= 22;
    }

    if (!any) {
      g.fillStyle = ink;
      g.textAlign = 'center';
      g.textBaseline = 'middle';
      g.fillText('no traffic yet', left + plotW / 2, top + plotH / 2);
    }
  }
}
