/** One line of a chart: a value (or a gap) per category. */
export interface ChartSeries {
  label: string;
  values: (number | null)[];
}

export interface ChartSpec {
  title: string;
  categories: string[];
  series: ChartSeries[];
  xLabel: string;
  yLabel: string;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** A tick step of 1, 2 or 5 times a power of ten giving about `target` ticks over `span`. */
function niceStep(span: number, target: number): number {
  const raw = span / Math.max(1, target);
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/**
 * A self-contained SVG line chart: accuracy (y) against bit setting (x, categorical), one line with markers and
 * value labels per run, and a legend. No fonts or scripts are referenced, so it renders anywhere.
 */
export function renderChart(spec: ChartSpec): string {
  const W = 720;
  const H = 440;
  const m = { left: 70, right: 180, top: 50, bottom: 70 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const vals = spec.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  let lo = vals.length ? Math.min(...vals) : 0;
  let hi = vals.length ? Math.max(...vals) : 100;
  const pad = Math.max(2, (hi - lo) * 0.15);
  lo = Math.max(0, lo - pad);
  hi = Math.min(100, hi + pad);
  if (hi - lo < 1) hi = lo + 1;
  const step = niceStep(hi - lo, 6);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const n = spec.categories.length;
  const x = (i: number) => m.left + (n <= 1 ? pw / 2 : (i * pw) / (n - 1));
  const y = (v: number) => m.top + ph - ((v - lo) / (hi - lo)) * ph;

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(spec.title)}</text>`);
  for (let v = lo; v <= hi + step / 1e6; v += step) {
    const yy = y(v).toFixed(1);
    out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${yy}" y2="${yy}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${m.left - 8}" y="${yy}" text-anchor="end" dominant-baseline="middle">${+v.toFixed(6)}</text>`);
  }
  out.push(`<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + ph}" stroke="black"/>`);
  out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${m.top + ph}" y2="${m.top + ph}" stroke="black"/>`);
  spec.categories.forEach((c, i) => {
    out.push(`<line x1="${x(i).toFixed(1)}" x2="${x(i).toFixed(1)}" y1="${m.top + ph}" y2="${m.top + ph + 5}" stroke="black"/>`);
    out.push(`<text x="${x(i).toFixed(1)}" y="${m.top + ph + 20}" text-anchor="middle">${esc(c)}</text>`);
  });
  out.push(`<text x="${m.left + pw / 2}" y="${H - 20}" text-anchor="middle">${esc(spec.xLabel)}</text>`);
  out.push(`<text transform="translate(20 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}</text>`);

  spec.series.forEach((s, k) => {
    const color = COLORS[k % COLORS.length];
    const pts = s.values.map((v, i) => (v === null || !Number.isFinite(v) ? null : ([x(i), y(v), v] as const)));
    // A gap (a setting a run lacks) breaks the line.
    let d = "";
    let pen = false;
    for (const p of pts) {
      if (!p) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${p[0].toFixed(1)} ${p[1].toFixed(1)} `;
      pen = true;
    }
    if (d) out.push(`<path d="${d.trim()}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const p of pts) {
      if (!p) continue;
      out.push(`<circle cx="${p[0].toFixed(1)}" cy="${p[1].toFixed(1)}" r="4" fill="${color}"><title>${esc(s.label)}: ${p[2].toFixed(2)}</title></circle>`);
      out.push(`<text x="${p[0].toFixed(1)}" y="${(p[1] - 9 - 12 * k).toFixed(1)}" text-anchor="middle" fill="${color}" font-size="10">${p[2].toFixed(1)}</text>`);
    }
    const ly = m.top + 10 + 22 * k;
    out.push(`<line x1="${m.left + pw + 20}" x2="${m.left + pw + 44}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<circle cx="${m.left + pw + 32}" cy="${ly}" r="4" fill="${color}"/>`);
    out.push(`<text x="${m.left + pw + 50}" y="${ly}" dominant-baseline="middle">${esc(s.label)}</text>`);
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}
