// Bandit simulator: regret of each policy on chosen true rates.
"use strict";

async function simulate(event) {
  if (event) event.preventDefault();
  const form = document.getElementById("simulator");
  const error = document.getElementById("error");
  const output = document.getElementById("output");
  const body = {
    true_rates: form.elements.true_rates.value.split(",").map((x) => Number(x.trim())),
    horizon: Number(form.elements.horizon.value),
    runs: Number(form.elements.runs.value),
    seed: Number(form.elements.seed.value),
  };
  try {
    const result = await abscope.api("POST", "/charts/simulate", body);
    error.classList.add("hidden");
    output.classList.remove("hidden");
    document.querySelector("#final-regret tbody").replaceChildren(
      ...Object.entries(result.final_regret).map(([policy, regret]) =>
        abscope.el("tr", {}, abscope.el("td", { text: policy }),
          abscope.el("td", { class: "num", text: regret.toFixed(1) }))));
    abscope.plot("chart-regret", result.regret);
  } catch (e) {
    output.classList.add("hidden");
    abscope.showError(error, e.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("simulator").addEventListener("submit", simulate);
  simulate();
});
