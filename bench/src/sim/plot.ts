/**
 * A line chart as SVG, with nothing but text: a logarithmic x axis (hosts),
 * a linear y axis, one polyline per series with its points marked, and a
 * legend. Enough for RESULTS.md and a README viewer; no plotting library.
 */

/** One line of the chart. */
export interface Series {
  name: string;
  points: Array<[x: number, y: number]>;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"];

/** The SVG text of `series` against a log10 x axis. */
export function lineChart(title: string, xLabel: string, yLabel: string, series: readonly Series[]): string {
  const W = 640;
  const H = 400;
  const m = { left: 70, right: 20, top: 40, bottom: 60 };
  const xs = series.flatMap((s) => s.points.map(([x]) => x));
  const ys = series.flatMap((s) => s.points.map(([, y]) => y));
  const lx0 = Math.floor(Math.log10(Math.min(...xs)));
  const lx1 = Math.max(lx0 + 1, Math.ceil(Math.log10(Math.max(...xs))));
  const y1 = niceMax(Math.max(...ys));
  const px = (x: number) => m.left + ((Math.log10(x) - lx0) / (lx1 - lx0)) * (W - m.left - m.right);
  const py = (y: number) => H - m.bottom - (y / y1) * (H - m.top - m.bottom);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${escape(title)}</text>`,
  ];
  for (let e = lx0; e <= lx1; e++) {
    const x = px(10 ** e);
    out.push(`<line x1="${x}" y1="${m.top}" x2="${x}" y2="${H - m.bottom}" stroke="#ddd"/>`, `<text x="${x}" y="${H - m.bottom + 18}" text-anchor="middle">${(10 ** e).toLocaleString("en")}</text>`);
  }
  for (let k = 0; k <= 4; k++) {
    const v = (y1 * k) / 4;
    const y = py(v);
    out.push(`<line x1="${m.left}" y1="${y}" x2="${W - m.right}" y2="${y}" stroke="#ddd"/>`, `<text x="${m.left - 8}" y="${y + 4}" text-anchor="end">${+v.toFixed(2)}</text>`);
  }
  out.push(
    `<text x="${W / 2}" y="${H - 18}" text-anchor="middle">${escape(xLabel)}</text>`,
    `<text transform="translate(18 ${H / 2}) rotate(-90)" text-anchor="middle">${escape(yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${s.points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ")}"/>`);
    for (const [x, y] of s.points) out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${color}"/>`);
    out.push(`<rect x="${m.left + 10}" y="${m.top + 6 + i * 18}" width="12" height="4" fill="${color}"/>`, `<text x="${m.left + 28}" y="${m.top + 12 + i * 18}">${escape(s.name)}</text>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

/** The smallest 1, 2 or 5 times a power of ten at or above `v` (1 for 0). */
function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((k) => k * p).find((c) => c >= v)!;
}

function escape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
