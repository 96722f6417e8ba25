// Latency quantiles on the detail page: one card per quantile metric of the results, with
// each arm's p50/p95/p99 and interval, each treatment's relative change and interval
// (fixed-horizon, from a bootstrap over users), and a guardrail's always-valid verdict.
// detail.js announces each results body it draws with an "abscope:results" event.
"use strict";

const abscopeQuantiles = {
  label(q) { return `p${Number((q * 100).toFixed(6))}`; },

  interval(pair) {
    return Array.isArray(pair) ? { lower: pair[0], upper: pair[1] } : null;
  },

  verdictBadge(verdict) {
    const kinds = { non_inferior: "significant", breach: "srm", inconclusive: "underpowered" };
    const texts = { non_inferior: "within margin", breach: "breach", inconclusive: "inconclusive" };
    return abscope.badge(texts[verdict] || "inconclusive", kinds[verdict] || "underpowered");
  },

  rows(metric) {
    const rows = [];
    for (const row of metric.quantile_results || []) {
      const changes = Object.fromEntries((row.comparisons || []).map((c) => [c.variant, c]));
      for (const [arm, figures] of Object.entries(row.arms || {})) {
        const change = changes[arm];
        const ci = abscopeQuantiles.interval(figures.interval);
        const cells = [
          abscope.el("td", { text: row.label }),
          abscope.el("td", { text: arm }),
          abscope.cell(figures.estimate, abscope.num(figures.estimate), figures.reason,
            { class: "num", "data-field": "estimate" }),
          abscope.cell(ci, abscope.interval(ci, (x) => abscope.num(x)), figures.reason,
            { "data-field": "interval" }),
        ];
        if (change) {
          const rel = abscopeQuantiles.interval(change.relative_interval);
          cells.push(
            abscope.cell(change.relative, abscope.signedPct(change.relative), change.relative_reason,
              { class: "num", "data-field": "relative" }),
            abscope.cell(rel, abscope.interval(rel, abscope.signedPct), change.relative_reason,
              { "data-field": "relative-interval" }));
        } else {
          cells.push(abscope.el("td", { class: "num muted", text: "(control)" }), abscope.el("td", { text: "" }));
        }
        rows.push(abscope.el("tr", { "data-quantile": String(row.q), "data-variant": arm }, ...cells));
      }
    }
    return rows;
  },

  guardrail(metric) {
    if (metric.role !== "guardrail") return null;
    const label = abscopeQuantiles.label(metric.guard_quantile);
    const rise = metric.higher_is_better ? "fall" : "rise";
    const items = (metric.comparisons || []).map((c) => {
      const bounds = abscopeQuantiles.interval(c.interval);
      return abscope.el("li", { "data-variant": c.variant, "data-verdict": c.verdict, title: c.reason_text || "" },
        `${c.variant}: `, abscopeQuantiles.verdictBadge(c.verdict),
        ` change ${c.estimate === null ? abscope.undefinedText : abscope.signedPct(c.estimate)},`
        + ` always-valid bounds ${abscope.interval(bounds, abscope.signedPct)}`
        + (c.reason ? ` (${abscope.reasonText(c.reason)})` : ""));
    });
    return abscope.el("div", { class: "quantile-guardrail" },
      abscope.el("p", { text: `Guardrail: ${label} may not ${rise} more than ${abscope.pct(metric.margin, 1)}`
        + ` (${metric.action || "alert"} on a breach). Judged by an always-valid (sequential) test,`
        + " so it may be read at every look:" }),
      abscope.el("ul", {}, ...items));
  },

  card(metric) {
    const level = `${Number(((metric.confidence_level || 0.95) * 100).toFixed(3))}%`;
    const counted = Object.entries(metric.variants || {})
      .map(([name, v]) => `${name} ${abscope.int(v.users)} users, ${abscope.int(v.requests)} requests`)
      .join("; ");
    const table = abscope.el("table", { class: "detail-cards quantile-table", id: `quantiles-${metric.name}`,
      "aria-labelledby": `quantile-title-${metric.name}` },
      abscope.el("thead", {}, abscope.el("tr", {},
        ...["Quantile", "Arm", "Estimate", `${level} interval`, "vs control", `${level} interval`]
          .map((h, i) => abscope.el("th", { class: i === 2 || i === 4 ? "num" : "", text: h, scope: "col" })))),
      abscope.el("tbody", {}, ...abscopeQuantiles.rows(metric)));
    abscopeQuantiles.labelCells(table);
    const better = metric.higher_is_better ? "higher" : "lower";
    return abscope.el("section", { class: "panel quantile-card", "data-metric": metric.name,
      "aria-labelledby": `quantile-title-${metric.name}` },
      abscope.el("h2", { id: `quantile-title-${metric.name}`, text: `Latency: ${metric.name}` }),
      abscope.el("p", { class: "muted quantile-note", text: `${metric.role}, ${better} is better.`
        + ` Intervals are fixed-horizon (valid at one look), from a bootstrap over users, so they`
        + ` hold when users make many requests. Counted: ${counted}.` }),
      abscope.el("div", { class: "table-wrap" }, table),
      abscopeQuantiles.guardrail(metric));
  },

  labelCells(table) {
    const headings = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
    for (const row of table.querySelectorAll("tbody tr")) {
      [...row.children].forEach((cell, index) => cell.setAttribute("data-label", headings[index] || ""));
    }
  },

  render(results) {
    const metrics = (results.metrics || []).filter((m) => m.kind === "quantile");
    let box = document.getElementById("quantile-cards");
    if (!box) {
      box = abscope.el("div", { id: "quantile-cards" });
      const anchor = document.getElementById("metrics-panel");
      if (!anchor) return;
      anchor.after(box);
    }
    box.replaceChildren(...metrics.map(abscopeQuantiles.card));
  },
};

document.addEventListener("abscope:results", (event) => abscopeQuantiles.render(event.detail));
