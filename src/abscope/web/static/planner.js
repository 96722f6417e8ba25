// Duration planner: inputs live in the query string, so a plan can be shared as a link.
"use strict";

const FIELDS = ["baseline_rate", "min_relative_lift", "daily_traffic", "allocation",
  "treatment_share", "power", "alpha", "two_sided", "sequential"];
const BOOLEANS = ["two_sided", "sequential"];
let pending = null;
let sequence = 0;

function readForm(form) {
  const body = {};
  for (const name of FIELDS) {
    const raw = form.elements[name].value;
    body[name] = BOOLEANS.includes(name) ? raw === "true" : (raw === "" ? null : Number(raw));
  }
  return body;
}

function writeQuery(body) {
  const url = new URL(window.location);
  for (const name of FIELDS) {
    // An emptied input is left out of the link rather than written as "null".
    if (body[name] === null) url.searchParams.delete(name);
    else url.searchParams.set(name, String(body[name]));
  }
  history.replaceState(null, "", url);
}

function readQuery(form) {
  const params = new URL(window.location).searchParams;
  for (const name of FIELDS) {
    if (params.has(name)) form.elements[name].value = params.get(name);
  }
}

async function update() {
  const form = document.getElementById("planner");
  const body = readForm(form);
  writeQuery(body);
  const mine = ++sequence;
  const error = document.getElementById("error");
  const output = document.getElementById("output");
  try {
    const result = await abscope.api("POST", "/charts/plan", body);
    if (mine !== sequence) return; // a newer input is on its way
    error.classList.add("hidden");
    output.classList.remove("hidden");
    const plan = result.plan;
    document.getElementById("control-samples").textContent = abscope.int(plan.control_samples);
    document.getElementById("treatment-samples").textContent = abscope.int(plan.treatment_samples);
    document.getElementById("total-samples").textContent = abscope.int(plan.total_samples);
    document.getElementById("days").textContent = abscope.int(plan.days);
    const sequential = plan.mode === "sequential";
    const other = sequential ? plan.fixed_horizon : plan.always_valid;
    document.getElementById("plan-mode").textContent = sequential
      ? `For the sequential (always-valid) test, which may be read every day: ` +
        `tuned for ${abscope.int(plan.sequential_tuning_n)} users, as the analysis is.`
      : "For the fixed-horizon test, read once when the sample is reached.";
    document.getElementById("plan-alternative").textContent = sequential
      ? `A fixed-horizon test read once would need ${abscope.int(other.total_samples)} users ` +
        `(${abscope.int(other.days)} days), but only if nobody looks before then.`
      : `The sequential test, safe to read every day, would need ` +
        `${abscope.int(other.total_samples)} users (${abscope.int(other.days)} days).`;
    document.getElementById("plan-summary").textContent =
      `Detecting ${abscope.pct(plan.baseline_rate)} → ${abscope.pct(plan.treatment_rate)} ` +
      `(${abscope.signedPct(plan.min_relative_lift)}) with ${abscope.pct(plan.power, 0)} power at ` +
      `alpha ${plan.alpha}, ${abscope.int(plan.daily_users_in_test)} users a day in the test.`;
    abscope.plot("chart-sensitivity", result.sensitivity);
    abscope.plot("chart-power", result.power);
  } catch (e) {
    if (mine !== sequence) return;
    output.classList.add("hidden");
    abscope.showError(error, e.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("planner");
  readQuery(form);
  form.addEventListener("input", () => {
    clearTimeout(pending);
    pending = setTimeout(update, 250);
  });
  form.addEventListener("submit", (event) => { event.preventDefault(); update(); });
  update();
});
