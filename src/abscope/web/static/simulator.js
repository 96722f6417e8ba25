// Bandit simulator: regret of each policy on chosen true rates.
"use strict";

let simulating = false;

// While a run is in progress: the button disabled, a progress line with the seconds spent,
// and the previous result greyed out and marked busy, until the answer (or error) comes.
function busy(on) {
  const form = document.getElementById("simulator");
  const button = form.querySelector("button[type=submit]");
  const progress = document.getElementById("sim-progress");
  const text = document.getElementById("sim-progress-text");
  const output = document.getElementById("output");
  simulating = on;
  button.disabled = on;
  form.setAttribute("aria-busy", on ? "true" : "false");
  output.setAttribute("aria-busy", on ? "true" : "false");
  output.classList.toggle("sim-stale", on);
  progress.classList.toggle("hidden", !on);
  clearInterval(busy.timer);
  if (on) {
    const started = Date.now();
    text.textContent = "Simulating…";
    busy.timer = setInterval(() => {
      const seconds = Math.floor((Date.now() - started) / 1000);
      text.textContent = `Simulating… ${seconds} s`;
    }, 1000);
  }
}

async function simulate(event) {
  if (event) event.preventDefault();
  if (simulating) return;
  const form = document.getElementById("simulator");
  const error = document.getElementById("error");
  const output = document.getElementById("output");
  const body = {
    true_rates: form.elements.true_rates.value.split(",").map((x) => Number(x.trim())),
    horizon: Number(form.elements.horizon.value),
    runs: Number(form.elements.runs.value),
    seed: Number(form.elements.seed.value),
  };
  busy(true);
  try {
    const result = await abscope.api("POST", "/charts/simulate", body);
    error.classList.add("hidden");
    output.classList.remove("hidden");
    document.querySelector("#final-regret tbody").replaceChildren(
      ...Object.entries(result.final_regret).map(([policy, regret]) =>
        abscope.el("tr", {}, abscope.el("th", { scope: "row", text: policy }),
          abscope.el("td", { class: "num", text: regret.toFixed(1) }))));
    busy(false);
    await abscope.plot("chart-regret", result.regret);
  } catch (e) {
    busy(false);
    output.classList.add("hidden");
    abscope.showError(error, e.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("simulator").addEventListener("submit", simulate);
  simulate();
});
