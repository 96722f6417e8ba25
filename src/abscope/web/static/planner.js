// Duration planner: inputs live in the query string, so a plan can be shared as a link.
// The page shows percent; POST /charts/plan (like /calculate) takes fractions, so percent
// fields are divided by 100 here, as decimals (toPrecision drops float noise: 7.3 -> 0.073).
"use strict";

const FIELDS = ["metric_type", "baseline_pct", "baseline_mean", "standard_deviation",
  "effect_scale", "min_effect", "daily_traffic", "traffic_pct", "arms", "treatment_share_pct",
  "power_pct", "alpha_pct", "two_sided", "sequential", "max_days", "covariate_correlation"];
const BOOLEANS = ["two_sided", "sequential"];
const CHOICES = ["metric_type", "effect_scale"];
// Links made before the page spoke percent carry fractions under the API's names.
const OLD_FRACTIONS = { baseline_rate: "baseline_pct", allocation: "traffic_pct",
  treatment_share: "treatment_share_pct", power: "power_pct", alpha: "alpha_pct",
  min_relative_lift: "min_effect" };
// The API's field names in the page's words, for its error messages.
const LABELS = { baseline_rate: "Baseline conversion rate", baseline_mean: "Baseline mean",
  standard_deviation: "Standard deviation", min_relative_lift: "Minimum relative lift",
  min_absolute_effect: "Minimum absolute effect", daily_traffic: "Daily traffic",
  allocation: "Traffic in the experiment", arms: "Arms", treatment_share: "Share of each treatment arm",
  power: "Power", alpha: "Significance level", max_days: "Longest you can run",
  sequential_tuning_n: "Sequential tuning",
  covariate_correlation: "Correlation with a pre-period covariate" };
let pending = null;
let sequence = 0;

function number(raw) { return raw.trim() === "" ? null : Number(raw); }
function fraction(raw) {
  const value = number(raw);
  return value === null ? null : Number((value / 100).toPrecision(15));
}

function readForm(form) {
  const get = (name) => form.elements[name].value;
  const binary = get("metric_type") === "binary";
  const relative = get("effect_scale") === "relative";
  const effect = relative || binary ? fraction(get("min_effect")) : number(get("min_effect"));
  const body = {
    metric_type: get("metric_type"),
    daily_traffic: number(get("daily_traffic")),
    allocation: fraction(get("traffic_pct")),
    arms: number(get("arms")),
    power: fraction(get("power_pct")),
    alpha: fraction(get("alpha_pct")),
    two_sided: get("two_sided") === "true",
    sequential: get("sequential") === "true",
  };
  if (binary) body.baseline_rate = fraction(get("baseline_pct"));
  else {
    body.baseline_mean = number(get("baseline_mean"));
    body.standard_deviation = number(get("standard_deviation"));
  }
  body[relative ? "min_relative_lift" : "min_absolute_effect"] = effect;
  const share = fraction(get("treatment_share_pct"));
  if (share !== null) body.treatment_share = share;
  const longest = number(get("max_days"));
  if (longest !== null) body.max_days = longest;
  // A correlation, not a percentage: sent as typed (0.7), left out when empty.
  const rho = number(get("covariate_correlation"));
  if (rho !== null) body.covariate_correlation = rho;
  return body;
}

function writeQuery(form) {
  const url = new URL(window.location);
  for (const name of Object.keys(OLD_FRACTIONS)) url.searchParams.delete(name);
  for (const name of FIELDS) {
    const raw = form.elements[name].value;
    // An emptied input is left out of the link rather than written as "null".
    if (raw === "") url.searchParams.delete(name);
    else url.searchParams.set(name, raw);
  }
  history.replaceState(null, "", url);
}

function readQuery(form) {
  const params = new URL(window.location).searchParams;
  for (const [old, name] of Object.entries(OLD_FRACTIONS)) {
    if (params.has(old) && !params.has(name) && params.get(old) !== "") {
      form.elements[name].value = String(Number((Number(params.get(old)) * 100).toPrecision(15)));
    }
  }
  for (const name of FIELDS) {
    if (params.has(name)) form.elements[name].value = params.get(name);
  }
}

// Show the fields of the chosen metric, and name the effect in its unit.
function adapt(form) {
  const binary = form.elements.metric_type.value === "binary";
  const relative = form.elements.effect_scale.value === "relative";
  for (const node of form.querySelectorAll(".planner-binary")) node.classList.toggle("hidden", !binary);
  for (const node of form.querySelectorAll(".planner-continuous")) node.classList.toggle("hidden", binary);
  document.getElementById("effect-label").textContent = relative
    ? "Minimum relative lift (%)"
    : binary ? "Minimum difference (percentage points)" : "Minimum difference (in the metric's unit)";
}

const FRACTIONS = ["baseline_rate", "allocation", "treatment_share", "power", "alpha",
  "min_relative_lift"];

// The service's message with the field named as the page names it; its fractions explained.
function humanError(error) {
  const detail = error.data && error.data.detail;
  if (!Array.isArray(detail)) return error.message || String(error);
  return detail.map((issue) => {
    const field = abscope.fieldOf(issue.loc);
    const label = LABELS[field];
    if (!label) return `${field}: ${issue.msg}`;
    let message = issue.msg.replaceAll(field, label);
    if (!message.startsWith(label)) message = `${label}: ${message}`;
    if (FRACTIONS.includes(field)) message += " (the service reads it as a fraction: 0.1 is the 10% typed here)";
    return message;
  }).join("; ");
}

function effectText(plan) {
  const relative = plan.min_relative_lift === null ? null : abscope.signedPct(plan.min_relative_lift);
  if (plan.metric_type === "binary") {
    const points = `${plan.min_absolute_effect >= 0 ? "+" : ""}${abscope.num(plan.min_absolute_effect * 100)} percentage points`;
    return `${abscope.pct(plan.baseline_rate)} → ${abscope.pct(plan.treatment_rate)} ` +
      `(${relative}, ${points})`;
  }
  const diff = `${plan.min_absolute_effect >= 0 ? "+" : ""}${abscope.num(plan.min_absolute_effect)}`;
  return `a mean of ${abscope.num(plan.baseline_mean)} → ${abscope.num(plan.treatment_mean)} ` +
    `(${relative === null ? "" : relative + ", "}${diff}; standard deviation ${abscope.num(plan.standard_deviation)})`;
}

function show(plan) {
  const several = plan.arms > 2;
  document.getElementById("control-samples").textContent = abscope.int(plan.control_samples);
  document.getElementById("treatment-samples").textContent = abscope.int(plan.treatment_samples);
  document.getElementById("treatment-label").textContent =
    several ? "users in each treatment" : "treatment users";
  document.getElementById("total-samples").textContent = abscope.int(plan.total_samples);
  document.getElementById("days").textContent = abscope.int(plan.days);
  const sequential = plan.mode === "sequential";
  const other = sequential ? plan.fixed_horizon : plan.always_valid;
  document.getElementById("plan-mode").textContent = sequential
    ? `For the sequential (always-valid) test, which may be read every day: ` +
      `tuned for ${abscope.int(plan.sequential_tuning_n)} users, as the analysis is.`
    : "For the fixed-horizon test, read once when the sample is reached.";
  document.getElementById("plan-arms").textContent = several
    ? `${plan.arms} arms: each of the ${plan.comparisons} treatments is compared with the ` +
      `control at a significance level of ${abscope.num(plan.alpha_per_comparison * 100)}% ` +
      `(${abscope.num(plan.alpha * 100)}% split over ${plan.comparisons} comparisons), which ` +
      `keeps the power under the Holm correction the analysis applies.`
    : "";
  showCuped(plan);
  document.getElementById("plan-alternative").textContent = sequential
    ? `A fixed-horizon test read once would need ${abscope.int(other.total_samples)} users ` +
      `(${abscope.int(other.days)} days), but only if nobody looks before then.`
    : `The sequential test, safe to read every day, would need ` +
      `${abscope.int(other.total_samples)} users (${abscope.int(other.days)} days).`;
  document.getElementById("plan-summary").textContent =
    `Detecting ${effectText(plan)} with ${abscope.pct(plan.power, 0)} power at a ` +
    `${abscope.num(plan.alpha * 100)}% significance level, ` +
    `${abscope.int(plan.daily_users_in_test)} users a day in the test.`;
  const warnings = document.getElementById("plan-warnings");
  warnings.replaceChildren(...plan.warnings.map((w) =>
    abscope.el("p", { "data-code": w.code, text: w.message })));
  warnings.classList.toggle("hidden", plan.warnings.length === 0);
}

// With a CUPED correlation the figures above are for the adjusted test; say so, and give the
// plan without it beside them.
function showCuped(plan) {
  const line = document.getElementById("plan-cuped");
  const without = plan.unadjusted;
  line.classList.toggle("hidden", without === null);
  if (without === null) { line.textContent = ""; return; }
  const users = (figures) => figures.control_samples === figures.treatment_samples
    ? `${abscope.int(figures.control_samples)} users per arm`
    : `${abscope.int(figures.control_samples)} control and ${abscope.int(figures.treatment_samples)} ` +
      `users in each treatment`;
  line.replaceChildren(
    abscope.el("strong", { text: `With CUPED (ρ = ${plan.covariate_correlation}): ` }),
    abscope.el("span", { id: "cuped-adjusted", text: `${users(plan)}, ${abscope.int(plan.days)} days` }),
    abscope.el("span", { id: "cuped-unadjusted",
      text: ` (instead of ${users(without)}, ${abscope.int(without.days)} days without it)` }),
    abscope.el("span", { class: "muted", text: `. The figures above are for the adjusted test: ` +
      `the variance is multiplied by 1 − ρ² = ${abscope.num(plan.variance_factor)}, as it is ` +
      `when users carry the covariate.` }));
}

async function update() {
  const form = document.getElementById("planner");
  adapt(form);
  const body = readForm(form);
  writeQuery(form);
  const mine = ++sequence;
  const error = document.getElementById("error");
  const output = document.getElementById("output");
  try {
    const result = await abscope.api("POST", "/charts/plan", body);
    if (mine !== sequence) return; // a newer input is on its way
    error.classList.add("hidden");
    output.classList.remove("hidden");
    show(result.plan);
    abscope.plot("chart-sensitivity", result.sensitivity);
    abscope.plot("chart-power", result.power);
  } catch (e) {
    if (mine !== sequence) return;
    output.classList.add("hidden");
    abscope.showError(error, humanError(e));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("planner");
  readQuery(form);
  adapt(form);
  form.addEventListener("input", () => {
    clearTimeout(pending);
    pending = setTimeout(update, 250);
  });
  form.addEventListener("submit", (event) => { event.preventDefault(); update(); });
  update();
});
