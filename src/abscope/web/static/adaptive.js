// The detail page's card "Estimates corrected for adaptive allocation" (bandit experiments
// only): per arm, and for each treatment minus the control, the naive figure beside the
// Hájek estimate (the unbiased one) and the square-root-weighted ("stabilized") interval
// (the one to report), from the results' adaptive_estimates section. A fixed split's
// section is null and the card stays hidden. Every figure is fixed-horizon, as the card
// says. A null figure is an em dash with its reason on hover, never a number.
"use strict";

const abscopeAdaptive = {
  format(binary, signed) {
    if (binary) return signed ? (x) => abscope.signedPct(x, 2) : (x) => abscope.pct(x, 2);
    return (x) => (signed && x >= 0 ? "+" : "") + abscope.num(x);
  },

  figureCell(figure, text) {
    if (figure.estimate === null || figure.estimate === undefined) {
      return abscope.el("td", { class: "num", text: abscope.undefinedText,
        title: figure.reason_text || abscope.reasonText(figure.reason),
        "data-method": figure.method, "data-reason": figure.reason || "undefined" });
    }
    return abscope.el("td", { class: "num", "data-method": figure.method, text });
  },

  intervalCell(figure, format) {
    const interval = figure.interval;
    if (!interval || interval[0] === null || interval[1] === null) {
      return abscope.el("td", { text: abscope.undefinedText,
        title: figure.reason_text || abscope.reasonText(figure.reason),
        "data-method": `${figure.method}-interval`, "data-reason": figure.reason || "undefined" });
    }
    return abscope.el("td", { "data-method": `${figure.method}-interval`,
      text: abscope.range(interval[0], interval[1], format) });
  },

  // One row: the label, the users (arms only), naive, Hájek and the stabilized interval;
  // each cell names its column for the phone layout, where rows become cards.
  row(label, users, estimates, format, headings) {
    const cells = [abscope.el("td", { text: label })];
    if (users !== null) cells.push(abscope.el("td", { class: "num", text: abscope.int(users) }));
    const figure = (f) => abscopeAdaptive.figureCell(f, format(f.estimate));
    cells.push(figure(estimates.naive), figure(estimates.hajek),
      abscopeAdaptive.intervalCell(estimates.stabilized, format));
    cells.forEach((cell, index) => cell.setAttribute("data-label", headings[index] || ""));
    return abscope.el("tr", { "data-variant": label }, ...cells);
  },

  // A table whose first column is the label and whose last is the interval (text); the
  // columns between are numbers.
  table(id, caption, headings, rows) {
    const last = headings.length - 1;
    return abscope.el("div", { class: "table-wrap" },
      abscope.el("h3", { class: "adaptive-caption", text: caption }),
      abscope.el("table", { id, class: "detail-cards", "aria-label": caption },
        abscope.el("thead", {}, abscope.el("tr", {},
          ...headings.map((h, i) => abscope.el("th", { scope: "col",
            class: i && i < last ? "num" : null, text: h })))),
        abscope.el("tbody", {}, ...rows)));
  },

  render(panel, results) {
    const section = results.adaptive_estimates;
    if (!section) { panel.classList.add("hidden"); return; }
    const binary = results.metric_type === "binary";
    const level = `${Math.round(section.confidence_level * 100)}%`;
    const what = binary ? "rate" : "mean";
    const plain = abscopeAdaptive.format(binary, false);
    const signed = abscopeAdaptive.format(binary, true);
    const armHeadings = ["Variant", "Users", `Naive ${what}`, "Hájek (estimate)",
      `${level} interval (stabilized)`];
    const control = section.comparisons.length ? section.comparisons[0].control : "control";
    const differenceHeadings = ["Difference", "Naive difference", "Hájek (estimate)",
      `${level} interval (stabilized)`];
    const arms = abscopeAdaptive.table("adaptive-arms", `Each arm's ${what}`,
      armHeadings, section.arms.map((a) =>
        abscopeAdaptive.row(a.variant, a.users, a.estimates, plain, armHeadings)));
    const differences = abscopeAdaptive.table("adaptive-differences",
      `Each treatment minus ${control}`, differenceHeadings,
      section.comparisons.map((c) => {
        const row = abscopeAdaptive.row(`${c.variant} − ${c.control}`, null, c.estimates, signed,
          differenceHeadings);
        row.setAttribute("data-variant", c.variant);
        return row;
      }));
    panel.replaceChildren(
      abscope.el("h2", { text: "Estimates corrected for adaptive allocation" }),
      abscope.el("p", { class: "muted", id: "adaptive-explanation",
        text: `The bandit (${section.allocation}) sends fewer users to an arm while it looks bad, which biases the naive ${what}s; weighting each user by the inverse of its logged assignment probability corrects them. Report the Hájek estimate and the stabilized interval. Fixed-horizon intervals: not always-valid.` }),
      arms, differences);
    panel.classList.remove("hidden");
  },
};

// detail.js announces each results body it draws (on load, and after complete or stop).
document.addEventListener("abscope:results", (event) => {
  const panel = document.getElementById("adaptive-estimates");
  if (panel) abscopeAdaptive.render(panel, event.detail);
});
