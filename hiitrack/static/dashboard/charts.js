// Time series drawn by uPlot (vendored, see vendor/README.md), and small
// SVG sparklines.  A chart is first a placeholder holding its data
// (`chartSpec`); `mountCharts` draws it once it is on the page, and `morph`
// hands a live chart fresh data through `chart.update`.
import { h, svg } from './dom.js';

const HEIGHT = 240;

export const HOUR = 3600;
export const DAY = 86400;

// Every bucket from the one holding `start` to the one holding `finish`,
// with the report's non-zero [start, n] pairs and zeros elsewhere.
export function filledSeries(pairs, start, finish, step) {
  const counts = new Map(pairs);
  const xs = [];
  for (let t = Math.floor(start / step) * step; t <= finish; t += step) {
    xs.push(t);
  }
  return { xs, ys: xs.map((t) => counts.get(t) || 0) };
}

export function timeChart(spec) {
  const element = h('div', { class: 'chart', data: { key: spec.key }, role: 'img', 'aria-label': spec.label });
  element.chartSpec = spec;
  return element;
}

function colors() {
  const style = getComputedStyle(document.body);
  const read = (name) => style.getPropertyValue(name).trim();
  return { text: read('--muted'), grid: read('--grid'), series: [read('--series-1'), read('--series-2'), read('--series-3')] };
}

function draw(element) {
  const spec = element.chartSpec;
  const palette = colors();
  const axis = { stroke: palette.text, grid: { stroke: palette.grid, width: 1 }, ticks: { stroke: palette.grid } };
  const options = {
    width: Math.max(200, element.clientWidth),
    height: HEIGHT,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    scales: { y: { range: (plot, min, max) => [0, Math.max(1, max) * 1.1] } },
    axes: [axis, { ...axis, size: 56, values: spec.percent ? (plot, ticks) => ticks.map((t) => `${Math.round(t * 100)}%`) : undefined }],
    series: [
      {},
      ...spec.series.map((name, index) => ({
        label: name,
        stroke: palette.series[index],
        width: 2,
        fill: index === 0 ? `${palette.series[0]}22` : undefined,
        points: { show: spec.xs.length < 40 },
        value: spec.percent ? (plot, v) => (v === null ? '–' : `${(v * 100).toFixed(1)}%`) : undefined,
      })),
    ],
  };
  const plot = new uPlot(options, [spec.xs, ...spec.ys], element);
  new ResizeObserver(() => {
    if (element.clientWidth > 0 && element.clientWidth !== plot.width) {
      plot.setSize({ width: element.clientWidth, height: HEIGHT });
    }
  }).observe(element);
  element.chart = {
    update(next) {
      element.chartSpec = next;
      plot.setData([next.xs, ...next.ys]);
    },
  };
}

export function mountCharts(root) {
  for (const element of root.querySelectorAll('.chart')) {
    if (!element.chart) {
      draw(element);
    }
  }
}

export function sparkline(values, label) {
  const width = 120;
  const height = 28;
  const largest = Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - ((height - 4) * v) / largest).toFixed(1)}`);
  return svg(
    'svg',
    { class: 'sparkline', viewBox: `0 0 ${width} ${height}`, width: `${width}`, height: `${height}`, role: 'img', 'aria-label': label },
    svg('polyline', { points: points.join(' '), fill: 'none', 'stroke-width': '1.5' }),
  );
}
