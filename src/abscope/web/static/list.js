// Experiments list: status, variants, users so far, the best treatment's lift and flags.
// Every interval and badge comes from the experiment's inference mode (comparison.primary:
// the confidence sequence when sequential, else the fixed-horizon CI), so the list agrees
// with the detail page and the decision.
"use strict";

function bestComparison(results) {
  const comparisons = (results && results.comparisons) || [];
  let best = null;
  for (const c of comparisons) {
    // Every comparison shares the control, so the absolute difference ranks them even
    // when a relative lift is undefined (a control without conversions).
    if (c.absolute.estimate === null) continue;
    if (!best || c.absolute.estimate > best.absolute.estimate) best = c;
  }
  return best || comparisons[0] || null;
}

function modeLabel(results) {
  return results.inference === "sequential" ? "confidence sequence (sequential)" : "confidence interval (fixed-horizon)";
}

function flags(results) {
  const out = [];
  if (!results) return out;
  const comparisons = results.comparisons || [];
  const significant = comparisons.some((c) => c.primary.significant);
  if (significant) out.push(abscope.badge("significant", "significant"));
  if (results.srm && results.srm.mismatch) out.push(abscope.badge("SRM", "srm"));
  const verdict = results.decision && results.decision.verdict;
  // Underpowered: power for the pre-registered lift, in the mode in force, is below the
  // experiment's target power. Without a minimum lift there is no power to judge.
  const target = results.power || 0.8;
  const weak = comparisons.some((c) => c.power !== null && c.power < target && !c.primary.significant);
  if (weak && verdict === "keep_running") out.push(abscope.badge("underpowered", "underpowered"));
  return out;
}

function liftCells(r) {
  const found = bestComparison(r);
  if (!found) {
    return [abscope.cell(null, "", "no_samples", { class: "num" }), abscope.cell(null, "", "no_samples")];
  }
  const rel = found.relative;
  const ci = found.primary.relative_ci;
  const reason = rel.reason || found.primary.reason;
  const lift = abscope.cell(rel.estimate, `${found.variant} ${abscope.signedPct(rel.estimate)}`, rel.reason,
    { class: "num", "data-variant": found.variant });
  const interval = abscope.cell(ci, abscope.interval(ci, abscope.signedPct), reason,
    { "data-basis": found.primary.basis, title: ci ? modeLabel(r) : undefined });
  return [lift, interval];
}

async function load() {
  const status = document.getElementById("status-filter").value;
  const url = new URL(window.location);
  if (status) url.searchParams.set("status", status); else url.searchParams.delete("status");
  history.replaceState(null, "", url);
  const body = document.querySelector("#experiments tbody");
  const error = document.getElementById("error");
  error.classList.add("hidden");
  let listing;
  try {
    listing = await abscope.api("GET", `/experiments${status ? `?status=${status}` : ""}`);
  } catch (e) {
    abscope.showError(error, e.message);
    return;
  }
  const experiments = listing.experiments;
  const results = await Promise.all(experiments.map((x) =>
    x.status === "draft" ? null : abscope.api("GET", `/experiments/${x.id}/results`).catch(() => null)));
  body.replaceChildren(...experiments.map((x, i) => {
    const r = results[i];
    const users = r ? r.variants.reduce((sum, v) => sum + v.n, 0) : 0;
    const cells = r ? liftCells(r) : [abscope.el("td", { class: "num", text: abscope.undefinedText, title: "not started" }),
      abscope.el("td", { text: abscope.undefinedText, title: "not started" })];
    return abscope.el("tr", { "data-id": x.id },
      abscope.el("td", {}, abscope.el("a", { href: `/view/${x.id}`, text: x.name }),
        abscope.el("div", { class: "muted", text: x.id })),
      abscope.el("td", {}, abscope.badge(x.status, x.status)),
      abscope.el("td", { text: x.variants.map((v) => v.name).join(", ") }),
      abscope.el("td", { class: "num", text: abscope.int(users) }),
      ...cells,
      abscope.el("td", {}, flags(r)));
  }));
  document.getElementById("empty").classList.toggle("hidden", experiments.length > 0);
}

document.addEventListener("DOMContentLoaded", () => {
  const filter = document.getElementById("status-filter");
  filter.value = new URL(window.location).searchParams.get("status") || "";
  filter.addEventListener("change", load);
  load();
});
