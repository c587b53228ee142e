import type { MetricsRow } from "./metrics.js";

const W = 720;
const H = 420;
const M = { left: 64, right: 20, top: 36, bottom: 52 };

/** An SVG line chart of training and validation loss against step, with labelled axes and a legend. */
export function lossPlotSvg(rows: MetricsRow[], title: string): string {
  const train = rows.filter((r) => r.type === "train").map((r) => [r.step, r.loss] as const);
  const val = rows.flatMap((r) => (r.type === "eval" ? [[r.step, r.val_loss] as const] : []));
  const all = [...train, ...val].filter(([, y]) => Number.isFinite(y));
  const maxStep = Math.max(1, ...all.map(([x]) => x));
  const lo = Math.min(...all.map(([, y]) => y), Infinity);
  const hi = Math.max(...all.map(([, y]) => y), -Infinity);
  const [yMin, yMax] = all.length === 0 ? [0, 1] : lo === hi ? [lo - 0.5, hi + 0.5] : [lo - (hi - lo) * 0.05, hi + (hi - lo) * 0.05];
  const px = (x: number) => M.left + (x / maxStep) * (W - M.left - M.right);
  const py = (y: number) => H - M.bottom - ((y - yMin) / (yMax - yMin)) * (H - M.top - M.bottom);
  const path = (points: ReadonlyArray<readonly [number, number]>) => points.map(([x, y], i) => `${i ? "L" : "M"}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ");
  const ticks = (min: number, max: number, n: number) => Array.from({ length: n + 1 }, (_, i) => min + ((max - min) * i) / n);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${escape(title)}</text>`,
  ];
  for (const y of ticks(yMin, yMax, 5)) {
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${py(y).toFixed(1)}" y2="${py(y).toFixed(1)}" stroke="#eee"/>`);
    out.push(`<text x="${M.left - 6}" y="${(py(y) + 4).toFixed(1)}" text-anchor="end">${y.toFixed(3)}</text>`);
  }
  // Whole steps only, evenly spaced: a label must sit exactly at its step.
  const every = Math.max(1, Math.ceil(maxStep / 6));
  for (let x = 0; x <= maxStep; x += every) {
    out.push(`<text x="${px(x).toFixed(1)}" y="${H - M.bottom + 18}" text-anchor="middle">${Math.round(x)}</text>`);
  }
  out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" stroke="black"/>`);
  out.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}" stroke="black"/>`);
  out.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 12}" text-anchor="middle">step</text>`);
  out.push(`<text transform="translate(16 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">loss (nats)</text>`);
  if (train.length) out.push(`<path d="${path(train)}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>`);
  if (val.length) {
    out.push(`<path d="${path(val)}" fill="none" stroke="#d62728" stroke-width="1.5" stroke-dasharray="5 3"/>`);
    for (const [x, y] of val) out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="#d62728"/>`);
  }
  const lx = W - M.right - 150;
  out.push(`<line x1="${lx}" x2="${lx + 24}" y1="${M.top + 8}" y2="${M.top + 8}" stroke="#1f77b4" stroke-width="2"/><text x="${lx + 30}" y="${M.top + 12}">train loss</text>`);
  out.push(`<line x1="${lx}" x2="${lx + 24}" y1="${M.top + 26}" y2="${M.top + 26}" stroke="#d62728" stroke-width="2" stroke-dasharray="5 3"/><text x="${lx + 30}" y="${M.top + 30}">validation loss</text>`);
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
