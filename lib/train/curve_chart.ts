/** One line of a curve chart: (x, y) points in x order. */
export interface Curve {
  label: string;
  points: [number, number][];
  /** Dashed (e.g. a quantized setting beside its full-precision line). */
  dashed?: boolean;
  /** Index into the palette; lines of one run share it. */
  color?: number;
}

export interface CurveChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  curves: Curve[];
  /** Clamp the y axis to 0..100 (accuracies). */
  percent?: boolean;
  /** A logarithmic y axis (learning rates); non-positive values are dropped. */
  logY?: boolean;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

function niceStep(span: number, target: number): number {
  const raw = span / Math.max(1, target);
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

function label(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(1) : String(+v.toPrecision(4));
}

/**
 * A self-contained SVG line chart of numeric curves against a numeric x (epochs): one line per curve, a point
 * marker where a line has fewer than 60 points, and a legend. No fonts or scripts are referenced.
 */
export function renderCurves(spec: CurveChartSpec): string {
  const W = 760;
  const H = 440;
  const m = { left: 80, right: 200, top: 50, bottom: 60 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const fy = (v: number) => (spec.logY ? Math.log10(v) : v);
  const curves = spec.curves.map((c) => ({ ...c, points: c.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!spec.logY || y > 0)) }));
  const xs = curves.flatMap((c) => c.points.map((p) => p[0]));
  const ys = curves.flatMap((c) => c.points.map((p) => fy(p[1])));
  let x0 = xs.length ? Math.min(...xs) : 0;
  let x1 = xs.length ? Math.max(...xs) : 1;
  if (x1 - x0 < 1) x1 = x0 + 1;
  let y0 = ys.length ? Math.min(...ys) : 0;
  let y1 = ys.length ? Math.max(...ys) : 1;
  const pad = Math.max((y1 - y0) * 0.08, spec.logY ? 0.1 : Math.abs(y1) * 0.02 + 1e-9);
  y0 -= pad;
  y1 += pad;
  if (spec.percent) {
    y0 = Math.max(0, y0);
    y1 = Math.min(100, y1);
  }
  if (y1 - y0 <= 0) y1 = y0 + 1;
  const ystep = niceStep(y1 - y0, 6);
  y0 = Math.floor(y0 / ystep) * ystep;
  y1 = Math.ceil(y1 / ystep) * ystep;
  const xstep = Math.max(1, niceStep(x1 - x0, 8));
  const x = (v: number) => m.left + ((v - x0) / (x1 - x0)) * pw;
  const y = (v: number) => m.top + ph - ((fy(v) - y0) / (y1 - y0)) * ph;
  const yAt = (t: number) => m.top + ph - ((t - y0) / (y1 - y0)) * ph;

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(spec.title)}</text>`);
  for (let t = y0; t <= y1 + ystep / 1e6; t += ystep) {
    const yy = yAt(t).toFixed(1);
    out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${yy}" y2="${yy}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${m.left - 8}" y="${yy}" text-anchor="end" dominant-baseline="middle">${label(spec.logY ? 10 ** t : +t.toFixed(10))}</text>`);
  }
  for (let t = Math.ceil(x0 / xstep) * xstep; t <= x1 + 1e-9; t += xstep) {
    const xx = x(t).toFixed(1);
    out.push(`<line x1="${xx}" x2="${xx}" y1="${m.top + ph}" y2="${m.top + ph + 5}" stroke="black"/>`);
    out.push(`<text x="${xx}" y="${m.top + ph + 20}" text-anchor="middle">${label(t)}</text>`);
  }
  out.push(`<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + ph}" stroke="black"/>`);
  out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${m.top + ph}" y2="${m.top + ph}" stroke="black"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${H - 15}" text-anchor="middle">${esc(spec.xLabel)}</text>`);
  out.push(`<text transform="translate(20 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}${spec.logY ? " (log scale)" : ""}</text>`);
  curves.forEach((c, k) => {
    const color = COLORS[(c.color ?? k) % COLORS.length];
    const dash = c.dashed ? ' stroke-dasharray="6 4"' : "";
    if (c.points.length) {
      const d = c.points.map(([px, py], i) => `${i ? "L" : "M"}${x(px).toFixed(1)} ${y(py).toFixed(1)}`).join(" ");
      out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`);
      if (c.points.length < 60)
        for (const [px, py] of c.points)
          out.push(`<circle cx="${x(px).toFixed(1)}" cy="${y(py).toFixed(1)}" r="3" fill="${color}"><title>${esc(c.label)}: ${label(px)}, ${label(py)}</title></circle>`);
    }
    const ly = m.top + 10 + 22 * k;
    out.push(`<line x1="${m.left + pw + 16}" x2="${m.left + pw + 44}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${m.left + pw + 50}" y="${ly}" dominant-baseline="middle">${esc(c.label)}</text>`);
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}
