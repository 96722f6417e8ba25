// CUPED on named metrics, in the detail page's CUPED panel: each binary or mean metric with
// covariates of its own, per treatment its adjusted difference and interval (of the
// inference mode, named in the headings), the unadjusted difference, the p-value, a
// secondary's corrected p (how: on hover) and the variance removed. A guardrail's figures
// are descriptive: its verdict stays on the unadjusted always-valid test (said under the
// table). detail.js's renderCuped calls render(results) and shows the panel when it returns
// true.
"use strict";

const abscopeMetricCuped = {
  cell(value, text, c, attrs = {}) {
    if (value !== null && value !== undefined) return abscope.el("td", Object.assign({}, attrs, { text }));
    return abscope.el("td", Object.assign({}, attrs, { text: abscope.undefinedText,
      title: c.reason_text || abscope.reasonText(c.reason), "data-reason": c.reason || "undefined" }));
  },

  corrected(block, c) {
    if (block.role !== "secondary") {
      return abscope.el("td", { class: "num muted", "data-field": "adjusted_p_value",
        "data-reason": "not_corrected", title: c.p_value_correction, text: "not corrected" });
    }
    return abscopeMetricCuped.cell(c.adjusted_p_value, abscope.pValue(c.adjusted_p_value), c,
      { class: "num", "data-field": "adjusted_p_value", title: c.p_value_correction });
  },

  row(block, c) {
    const binary = block.outcome === "conversion";
    const diff = binary ? (x) => abscope.signedPct(x, 2) : abscope.num;
    const cell = abscopeMetricCuped.cell;
    const theta = c.theta_method === "pooled"
      ? `pooled ${abscope.num(c.theta_control)}`
      : `per arm ${abscope.num(c.theta_control)} / ${abscope.num(c.theta_treatment)}`;
    return abscope.el("tr", { "data-metric": block.metric, "data-variant": c.variant, "data-role": block.role },
      abscope.el("td", { class: "wrap", "data-field": "metric", text: `${block.metric} (${block.role})`,
        title: `${block.outcome}, adjusted by its own covariate` }),
      abscope.el("td", { text: c.variant }),
      cell(c.difference, diff(c.difference), c, { class: "num", "data-field": "difference" }),
      cell(c.difference_interval,
        c.difference_interval && abscope.range(c.difference_interval[0], c.difference_interval[1], diff),
        c, { "data-field": "difference_interval" }),
      cell(c.unadjusted_difference, diff(c.unadjusted_difference), c, { class: "num", "data-field": "unadjusted_difference" }),
      cell(c.p_value, abscope.pValue(c.p_value), c, { class: "num", "data-field": "p_value" }),
      abscopeMetricCuped.corrected(block, c),
      cell(c.variance_reduction, abscope.pct(c.variance_reduction, 1), c, { class: "num", "data-field": "variance_reduction" }),
      abscope.el("td", { "data-field": "theta", title: c.theta_reason, text: theta }));
  },

  // Draw the named metrics' blocks; true when there is any.
  render(r) {
    const blocks = (r.metrics || []).map((m) => m.cuped).filter(Boolean);
    const box = document.getElementById("cuped-metrics");
    box.classList.toggle("hidden", !blocks.length);
    if (!blocks.length) return false;
    const comparisons = blocks.flatMap((b) => b.comparisons);
    const sequential = (comparisons[0] || {}).inference === "sequential";
    document.getElementById("cuped-metrics-ci-heading").textContent = `Adjusted ${sequential ? "CS" : "CI"}`;
    document.getElementById("cuped-metrics-p-heading").textContent =
      `${sequential ? "Sequential" : "Fixed-horizon"} p (CUPED)`;
    const table = document.getElementById("cuped-metrics-table");
    table.querySelector("tbody").replaceChildren(
      ...blocks.flatMap((b) => b.comparisons.map((c) => abscopeMetricCuped.row(b, c))));
    const correction = (comparisons.find((c) => c.adjusted_p_value !== null && c.p_value_correction) || {}).p_value_correction;
    const guarded = blocks.some((b) => b.role === "guardrail");
    const coverage = blocks.map((b) =>
      `${b.metric} ${abscope.int(b.covariate_users)} of ${abscope.int(b.users)}`).join(", ");
    document.getElementById("cuped-metrics-note").replaceChildren(
      abscope.el("span", { id: "cuped-metrics-mode", "data-inference": sequential ? "sequential" : "fixed",
        text: sequential
          ? "Sequential: always-valid confidence sequences and p-values on each adjusted estimate."
          : "Fixed-horizon: normal intervals and p-values of each adjusted estimate, read once." }),
      abscope.el("span", { id: "cuped-metrics-coverage", text: ` Users with a covariate: ${coverage}.` }),
      correction ? ` Corrected p: ${correction}.` : "",
      guarded ? " Guardrails: descriptive only; their verdicts stay on the unadjusted always-valid test." : "");
    return true;
  },
};
