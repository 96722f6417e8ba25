// Experiments list: status, variants, users so far, the best treatment's lift and flags.
"use strict";

function bestComparison(results) {
  const comparisons = (results && results.comparisons) || [];
  let best = null;
  for (const c of comparisons) {
    if (!best || c.relative.estimate > best.relative.estimate) best = c;
  }
  return best;
}

function flags(results, experiment) {
  const out = [];
  if (!results) return out;
  const best = bestComparison(results);
  const significant = (results.comparisons || []).some((c) =>
    experiment.sequential ? c.sequential_significant : c.significant);
  if (significant) out.push(abscope.badge("significant", "significant"));
  if (results.srm && results.srm.mismatch) out.push(abscope.badge("SRM", "srm"));
  if (best && best.power !== null && best.power < 0.8 && !significant) {
    out.push(abscope.badge("underpowered", "underpowered"));
  }
  return out;
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
    const found = bestComparison(r);
    const best = found && found.relative.reason === null ? found : null; // no lift without data
    return abscope.el("tr", { "data-id": x.id },
      abscope.el("td", {}, abscope.el("a", { href: `/view/${x.id}`, text: x.name }),
        abscope.el("div", { class: "muted", text: x.id })),
      abscope.el("td", {}, abscope.badge(x.status, x.status)),
      abscope.el("td", { text: x.variants.map((v) => v.name).join(", ") }),
      abscope.el("td", { class: "num", text: abscope.int(users) }),
      abscope.el("td", { class: "num", text: best ? `${best.variant} ${abscope.signedPct(best.relative.estimate)}` : "–" }),
      abscope.el("td", { text: best ? abscope.range(best.relative.ci.lower, best.relative.ci.upper, abscope.signedPct) : "–" }),
      abscope.el("td", {}, flags(r, x)));
  }));
  document.getElementById("empty").classList.toggle("hidden", experiments.length > 0);
}

document.addEventListener("DOMContentLoaded", () => {
  const filter = document.getElementById("status-filter");
  filter.value = new URL(window.location).searchParams.get("status") || "";
  filter.addEventListener("change", load);
  load();
});
