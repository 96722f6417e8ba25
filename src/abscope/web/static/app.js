// Shared helpers for the abscope pages: the API client, number formats and the page header.
"use strict";

const KEY_STORAGE = "abscope.apiKey"; // kept in sessionStorage only, never in a URL
const UNDEFINED = "\u2014"; // an em dash: a value that cannot be computed, never a number

// Mirrors abscope.stats.results.REASONS: the hover text of an undefined value.
const REASONS = {
  no_samples: "an arm has no users yet",
  insufficient_samples: "an arm has too few users for this test",
  zero_variance: "every outcome is identical, so there is no measure of noise",
  zero_baseline: "the control has no conversions (or a zero mean), so a relative lift is undefined",
  zero_treatment: "the treatment has no conversions, so the relative interval is undefined",
  too_little_data: "inconclusive: too little data (fewer users per arm than the guardrail needs)",
  zero_denominator: "an arm's ratio has a zero denominator (no requests yet)",
  no_min_lift: "no minimum relative lift is set, so power cannot be computed",
  unreachable_target: "the minimum relative lift cannot be sized from this baseline",
};

const abscope = {
  apiKey() { return sessionStorage.getItem(KEY_STORAGE) || ""; },

  async api(method, path, body) {
    const headers = { "Accept": "application/json" };
    const key = abscope.apiKey();
    if (key) headers["X-API-Key"] = key;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    const text = await response.text();
    if (text) { try { data = JSON.parse(text); } catch (_) { data = { detail: text }; } }
    if (response.status === 401 || response.status === 403) abscope.keyNeeded(method);
    if (!response.ok) {
      const error = new Error(abscope.describeError(data, response.status));
      error.status = response.status;
      error.data = data;
      throw error;
    }
    return data;
  },

  // A call was refused for its key: the key field is marked, and when a read was refused
  // the page reloads once a key is typed, so that its data is fetched with it.
  reloadOnKey: false,
  keyNeeded(method) {
    if (method === "GET") abscope.reloadOnKey = true;
    const field = document.getElementById("api-key");
    if (field) { field.classList.add("needed"); field.setAttribute("aria-invalid", "true"); }
  },

  describeError(data, status) {
    const detail = data && data.detail;
    if (Array.isArray(detail)) {
      return detail.map((d) => `${abscope.fieldOf(d.loc)}: ${d.msg}`).join("; ");
    }
    if (typeof detail === "string") return detail;
    return `request failed (${status})`;
  },

  fieldOf(loc) {
    return (loc || []).filter((part) => part !== "body").join(".");
  },

  pct(x, digits = 2) {
    if (x === null || x === undefined || !Number.isFinite(x)) return UNDEFINED;
    return `${(x * 100).toFixed(digits)}%`;
  },
  signedPct(x, digits = 1) {
    if (x === null || x === undefined || !Number.isFinite(x)) return UNDEFINED;
    return `${x >= 0 ? "+" : ""}${(x * 100).toFixed(digits)}%`;
  },
  int(x) {
    if (x === null || x === undefined || !Number.isFinite(x)) return UNDEFINED;
    return Math.round(x).toLocaleString("en-US");
  },
  num(x, digits = 3) {
    if (x === null || x === undefined || !Number.isFinite(x)) return UNDEFINED;
    return Number(x).toLocaleString("en-US", { maximumSignificantDigits: digits + 1 });
  },
  pValue(p) {
    if (p === null || p === undefined) return UNDEFINED;
    return p < 0.0001 ? "<0.0001" : p.toFixed(4);
  },
  range(lo, hi, format) {
    return `${format(lo)} to ${format(hi)}`;
  },
  // An interval {lower, upper} (or null when undefined) as text.
  interval(ci, format) {
    if (!ci || ci.lower === null || ci.upper === null) return UNDEFINED;
    return abscope.range(ci.lower, ci.upper, format);
  },
  // A moment in words, in UTC: "1 Dec 2026 14:03 UTC".
  when(iso) {
    const d = new Date(iso);
    const date = d.toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
    const time = d.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: "UTC" });
    return `${date} ${time} UTC`;
  },
  undefinedText: UNDEFINED,
  reasonText(reason) {
    if (!reason) return "undefined";
    return REASONS[reason] ? `${REASONS[reason]} (${reason})` : reason;
  },
  // A table cell showing `text`, or an em dash with the reason on hover when the value is
  // undefined (null): never a number in its place.
  cell(value, text, reason, attrs = {}) {
    if (value === null || value === undefined) {
      return abscope.el("td", Object.assign({}, attrs, {
        text: UNDEFINED, title: abscope.reasonText(reason), "data-reason": reason || "undefined",
      }));
    }
    return abscope.el("td", Object.assign({}, attrs, { text }));
  },

  el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === false || value === null || value === undefined) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  },

  badge(text, kind) { return abscope.el("span", { class: `badge ${kind || ""}`, text }); },

  showError(target, message) {
    target.textContent = message;
    target.classList.remove("hidden");
  },

  // Plotly.js (4.8 MB of script to compile) must hold up no table: the page's head only
  // preloads it (link#plotly-js, downloaded alongside the page, not run), and the first
  // chart to draw runs it. This resolves once it has run (at once if it has).
  plotlyReady() {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    if (!abscope.plotlyLoading) {
      abscope.plotlyLoading = new Promise((resolve, reject) => {
        const link = document.getElementById("plotly-js");
        if (!link) { reject(new Error("this page does not load Plotly.js")); return; }
        const script = abscope.el("script", { src: link.href });
        script.addEventListener("load", () => resolve(window.Plotly));
        script.addEventListener("error", () => reject(new Error("Plotly.js did not load")));
        document.head.append(script);
      });
    }
    return abscope.plotlyLoading;
  },
  plotlyLoading: null,

  async plot(id, figure) {
    const plotly = await abscope.plotlyReady();
    const node = document.getElementById(id);
    const layout = Object.assign({}, figure.layout || {}, { autosize: true });
    const drawn = await plotly.react(node, figure.data || [], layout, { responsive: true, displaylogo: false });
    abscope.describeChart(node, figure);
    return drawn;
  },

  // A chart's text alternative: the box is a figure named by the chart's title (or the
  // page's own aria-label), described by a visually hidden summary of its series.
  describeChart(node, figure) {
    const layout = figure.layout || {};
    const text = (t) => (t && typeof t === "object" ? t.text : t) || "";
    const axes = [text((layout.yaxis || {}).title), text((layout.xaxis || {}).title)].filter(Boolean);
    const title = text(layout.title) || (axes.length === 2 ? `${axes[0]} against ${axes[1]}` : "Chart");
    const value = (v) => (typeof v === "number" ? abscope.num(v) : String(v));
    const series = (figure.data || []).map((trace, i) => {
      const name = trace.name || `series ${i + 1}`;
      if (trace.type === "heatmap" && Array.isArray(trace.z)) {
        const cells = trace.z.flat().filter((z) => typeof z === "number");
        if (!cells.length) return `${name}: no cells`;
        return `${name}: ${trace.z.length} by ${(trace.z[0] || []).length} cells, from `
          + `${value(Math.min(...cells))} to ${value(Math.max(...cells))}`;
      }
      const ys = Array.isArray(trace.y) ? trace.y : [];
      const xs = Array.isArray(trace.x) ? trace.x : [];
      if (!ys.length) return `${name}: no points`;
      const last = ys.length - 1;
      const at = xs.length > last ? ` at ${value(xs[last])}` : "";
      return `${name}: ${ys.length} point${ys.length === 1 ? "" : "s"}, the last ${value(ys[last])}${at}`;
    });
    const summaryId = `${node.id}-summary`;
    let summary = document.getElementById(summaryId);
    if (!summary) {
      summary = abscope.el("p", { id: summaryId, class: "visually-hidden" });
      node.insertAdjacentElement("afterend", summary);
    }
    summary.textContent = `${title}. ${series.join("; ") || "No data"}.`;
    node.setAttribute("role", "figure");
    if (!node.dataset.label) node.dataset.label = node.getAttribute("aria-label") || "";
    node.setAttribute("aria-label", node.dataset.label || `Chart: ${title}`);
    node.setAttribute("aria-describedby", summaryId);
  },

  // Tables that scroll sideways can be scrolled from the keyboard: focusable, and named.
  scrollables() {
    for (const box of document.querySelectorAll(".table-wrap:not([tabindex])")) {
      const heading = box.closest(".panel, section, main")?.querySelector("h2, h1");
      const caption = box.querySelector("caption");
      box.setAttribute("tabindex", "0");
      box.setAttribute("role", "region");
      box.setAttribute("aria-label", (caption || heading)?.textContent.trim() || "Table");
    }
  },

  header() {
    const key = abscope.el("input", {
      type: "password", id: "api-key", placeholder: "API key: read, or admin to change",
      "aria-label": "API key (the read key to view, the admin key to make changes)",
      title: "With keys set on the service: the read key to view, the admin key to make changes",
      autocomplete: "off",
    });
    key.value = abscope.apiKey();
    key.addEventListener("change", () => {
      if (key.value) sessionStorage.setItem(KEY_STORAGE, key.value);
      else sessionStorage.removeItem(KEY_STORAGE);
      key.classList.remove("needed");
      key.removeAttribute("aria-invalid");
      if (key.value && abscope.reloadOnKey) window.location.reload();
    });
    const bar = abscope.el("header", { class: "top" },
      abscope.el("a", { class: "brand", href: "/" , text: "abscope" }),
      abscope.el("nav", {},
        abscope.el("a", { href: "/", text: "Experiments" }),
        abscope.el("a", { href: "/new", text: "New experiment" }),
        abscope.el("a", { href: "/planner", text: "Planner" }),
        abscope.el("a", { href: "/simulator", text: "Bandit simulator" })),
      abscope.el("label", { class: "key inline" }, key));
    document.body.prepend(bar);
  },
};

document.addEventListener("DOMContentLoaded", () => { abscope.header(); abscope.scrollables(); });
