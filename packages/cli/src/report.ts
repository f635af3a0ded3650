/** A self-contained HTML report of a run: loss and accuracy curves as inline SVG, no external assets. */

export interface Series {
  label: string;
  points: [number, number][];
  color: string;
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

export function lineChart(
  title: string,
  series: Series[],
  opts: { xLabel?: string; yLabel?: string } = {},
): string {
  const W = 640;
  const H = 280;
  const L = 56;
  const R = 16;
  const T = 28;
  const B = 40;
  const all = series.flatMap((s) => s.points).filter(([, y]) => Number.isFinite(y));
  if (all.length === 0) return `<p>${esc(title)}: no data</p>`;
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => y);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs) === x0 ? x0 + 1 : Math.max(...xs);
  let y0 = Math.min(...ys);
  let y1 = Math.max(...ys);
  if (y1 === y0) {
    y0 -= 0.5;
    y1 += 0.5;
  }
  const px = (x: number) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const py = (y: number) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const ticks = 5;
  let grid = "";
  for (let i = 0; i <= ticks; i++) {
    const y = y0 + ((y1 - y0) * i) / ticks;
    grid += `<line x1="${L}" x2="${W - R}" y1="${py(y).toFixed(1)}" y2="${py(y).toFixed(1)}" stroke="#e5e5e5"/>`;
    grid += `<text x="${L - 6}" y="${(py(y) + 4).toFixed(1)}" text-anchor="end" font-size="11">${y.toPrecision(3)}</text>`;
    const x = x0 + ((x1 - x0) * i) / ticks;
    grid += `<text x="${px(x).toFixed(1)}" y="${H - B + 16}" text-anchor="middle" font-size="11">${Math.round(x)}</text>`;
  }
  const lines = series
    .map((s) => {
      const pts = s.points.filter(([, y]) => Number.isFinite(y));
      const d = pts
        .map(([x, y], i) => `${i === 0 ? "M" : "L"}${px(x).toFixed(1)},${py(y).toFixed(1)}`)
        .join("");
      const dots =
        pts.length <= 40
          ? pts
              .map(
                ([x, y]) =>
                  `<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${s.color}"/>`,
              )
              .join("")
          : "";
      return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.6"/>${dots}`;
    })
    .join("");
  const legend = series
    .map(
      (s, i) =>
        `<text x="${L + 8 + i * 170}" y="${T - 10}" font-size="12" fill="${s.color}">■ ${esc(s.label)}</text>`,
    )
    .join("");
  return `<figure><figcaption>${esc(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">${grid}<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#444"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#444"/>${lines}${legend}<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle" font-size="12">${esc(opts.xLabel ?? "batch")}</text><text transform="translate(14 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(opts.yLabel ?? "")}</text></svg></figure>`;
}

export function htmlReport(title: string, summary: Record<string, unknown>, charts: string[]): string {
  const rows = Object.entries(summary)
    .map(
      ([k, v]) =>
        `<tr><th>${esc(k)}</th><td>${esc(typeof v === "number" ? String(Number(v.toPrecision(6))) : String(v))}</td></tr>`,
    )
    .join("");
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title><style>body{font-family:sans-serif;max-width:720px;margin:2em auto;color:#222}th{text-align:left;padding-right:1em;font-weight:600}td,th{padding:2px 8px}figure{margin:1.5em 0}figcaption{font-weight:600;margin-bottom:.3em}</style></head><body><h1>${esc(title)}</h1><table>${rows}</table>${charts.join("")}</body></html>`;
}
