// The status page shell, in the browser: polling the daemon's JSON, building
// DOM (text only, never markup from data), units, progress bars and the rate
// chart. No dependencies. Pages call shoal.start({ render }) once.
/* global document, location, window, fetch, Node */
"use strict";
(() => {
  const SVG = "http://www.w3.org/2000/svg";
  /** The token a page URL carries after `#token=` (the agent's); sent as a bearer token, never in a URL the server sees. */
  const token = new URLSearchParams(location.hash.slice(1)).get("token");

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs ?? {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") el.className = v;
      else el.setAttribute(k, String(v));
    }
    for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
    return el;
  }

  function s(tag, attrs) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs ?? {})) el.setAttribute(k, String(v));
    return el;
  }

  const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];
  function bytes(n) {
    let i = 0;
    while (n >= 1024 && i < UNITS.length - 1) {
      n /= 1024;
      i++;
    }
    return `${n.toFixed(i === 0 ? 0 : 1)} ${UNITS[i]}`;
  }

  function short(digest) {
    return digest.replace(/^sha256:/, "").slice(0, 12);
  }

  function ago(t) {
    const s = Math.max(0, Math.round((Date.now() - t) / 1000));
    return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
  }

  /** A progress bar of done/total, labelled (default: the percentage, rounded down so 100% means done). */
  function bar(done, total, label, attrs) {
    const fill = h("div", { class: "fill" });
    fill.style.width = `${total > 0 ? Math.min(100, (100 * done) / total).toFixed(1) : 0}%`;
    const pct = total > 0 ? Math.floor((100 * done) / total) : 0;
    return h("div", { class: "bar", role: "progressbar", "aria-valuenow": done, "aria-valuemax": total, ...attrs }, fill, h("span", {}, label ?? `${pct}%`));
  }

  /** A table: header cells, then rows of cells (strings, nodes, or [attrs, content]). */
  function table(head, rows, empty) {
    if (rows.length === 0) return h("p", { class: "empty" }, empty ?? "none");
    const cell = (tag, c) => (Array.isArray(c) ? h(tag, c[0], c[1]) : h(tag, {}, c));
    return h("table", {}, h("thead", {}, h("tr", {}, head.map((c) => cell("th", c)))), h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => cell("td", c))))));
  }

  function card(title, value, sub, attrs) {
    return h("div", { class: "card", ...attrs }, h("div", { class: "title" }, title), h("div", { class: "value" }, value), sub ? h("div", { class: "sub" }, sub) : null);
  }

  function section(title, ...content) {
    return h("section", {}, h("h2", {}, title), ...content);
  }

  /**
   * Rates over time from cumulative samples [{t, v: {key: total}}], one line
   * per series [{key, label, color}], over the last spanMs, as SVG, with a
   * legend giving each series' total (from `totals` when given, else the
   * last sample) and latest rate.
   */
  function rateChart(samples, series, spanMs, attrs, totals) {
    const W = 640, H = 170, L = 70, B = 20, T = 8;
    const now = samples.length > 0 ? samples[samples.length - 1].t : Date.now();
    const from = now - spanMs;
    const lines = series.map(() => []);
    for (let i = 1; i < samples.length; i++) {
      const a = samples[i - 1], b = samples[i];
      const dt = (b.t - a.t) / 1000;
      if (dt <= 0 || b.t < from) continue;
      series.forEach((sr, j) => lines[j].push({ t: b.t, r: Math.max(0, ((b.v[sr.key] ?? 0) - (a.v[sr.key] ?? 0)) / dt) }));
    }
    const max = Math.max(1024, ...lines.flat().map((p) => p.r));
    const x = (t) => L + ((t - from) / spanMs) * (W - L - 4);
    const y = (r) => T + (1 - r / max) * (H - T - B);
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img" });
    svg.append(s("line", { x1: L, y1: y(0), x2: W - 4, y2: y(0), class: "axis" }), s("line", { x1: L, y1: T, x2: L, y2: y(0), class: "axis" }));
    const label = (text, ax, ay, anchor) => {
      const el = s("text", { x: ax, y: ay, "text-anchor": anchor, class: "tick" });
      el.textContent = text;
      return el;
    };
    svg.append(label(`${bytes(max)}/s`, L - 6, T + 10, "end"), label("0", L - 6, y(0), "end"));
    svg.append(label(`−${Math.round(spanMs / 60000)} min`, L, H - 4, "start"), label("now", W - 4, H - 4, "end"));
    lines.forEach((pts, j) => {
      if (pts.length === 0) return;
      svg.append(s("polyline", { points: pts.map((p) => `${x(p.t).toFixed(1)},${y(p.r).toFixed(1)}`).join(" "), stroke: series[j].color, class: "series" }));
    });
    const last = totals ?? (samples.length > 0 ? samples[samples.length - 1].v : {});
    const legend = h("ul", { class: "legend" }, series.map((sr, j) => {
      const dot = h("span", { class: "dot" });
      dot.style.background = sr.color;
      const rate = lines[j].length > 0 ? lines[j][lines[j].length - 1].r : 0;
      return h("li", { "data-k": "series", "data-key": sr.key }, dot, `${sr.label}: `, h("b", { "data-k": "series-total", "data-v": last[sr.key] ?? 0 }, bytes(last[sr.key] ?? 0)), ` · ${bytes(rate)}/s`);
    }));
    return h("div", { class: "chart-box", ...attrs }, svg, legend);
  }

  /** Poll the daemon's page data every second and draw it with render(data). */
  function start({ render, everyMs = 1000 }) {
    const main = document.getElementById("main");
    const state = document.getElementById("state");
    const headers = token ? { authorization: `Bearer ${token}` } : {};
    let updates = 0;
    const tick = async () => {
      try {
        const res = await fetch("/v1/page", { headers, cache: "no-store" });
        const body = await res.json();
        if (!res.ok) throw new Error(`${body.code ?? res.status}: ${body.message ?? "failed"}`);
        main.replaceChildren(render(body));
        updates++;
        document.body.dataset.updates = String(updates);
        state.textContent = `live · updated ${new Date().toLocaleTimeString()}`;
        state.className = "live";
      } catch (err) {
        state.textContent = `not updating: ${err.message}`;
        state.className = "stale";
      }
      window.setTimeout(tick, everyMs);
    };
    void tick();
  }

  window.shoal = { h, bytes, short, ago, bar, table, card, section, rateChart, start };
})();
