// Experiment detail: lifecycle, ramp, results, decision, SRM, charts, explain, audit trail.
"use strict";

const experimentId = decodeURIComponent(window.location.pathname.split("/").pop());
// Mirrors abscope.models.ALLOWED_TRANSITIONS: which buttons are enabled in which status.
const ACTIONS = {
  draft: ["start"],
  running: ["pause", "complete", "stop"],
  paused: ["resume", "complete", "stop"],
  completed: [],
  stopped: [],
};

let experiment = null;
let lastResults = null; // the results on screen: the completion warning reads them

function showError(message) {
  abscope.showError(document.getElementById("error"), message);
}

function renderConfig(x) {
  experiment = x;
  document.title = `${x.name} · abscope`;
  document.getElementById("title").textContent = x.name;
  document.getElementById("experiment-id").textContent = x.id;
  const status = document.getElementById("status");
  status.replaceChildren(abscope.badge(x.status, x.status));
  document.getElementById("phase").textContent = x.phase;
  document.getElementById("description").textContent = x.description || "";
  const parts = [`${x.traffic_percentage}% of traffic`, x.metric_type, x.allocation];
  if (x.layer) parts.push(`layer ${x.layer}`);
  if (x.sticky) parts.push("sticky");
  parts.push(x.sequential ? "sequential" : "fixed horizon");
  parts.push(describeDesign(x));
  document.getElementById("config-summary").textContent = parts.join(" · ");
  document.getElementById("design-lift").value =
    x.min_relative_lift === null || x.min_relative_lift === undefined ? "" : String(+(x.min_relative_lift * 100).toFixed(6));
  document.getElementById("design-power").value = String(+(x.power * 100).toFixed(6));
  document.getElementById("design").disabled = ["completed", "stopped"].includes(x.status);
  const allowed = ACTIONS[x.status] || [];
  document.querySelectorAll("#lifecycle button").forEach((button) => {
    button.disabled = !allowed.includes(button.dataset.action);
  });
  const winner = document.getElementById("winner");
  if (x.status === "completed" || x.status === "stopped") {
    // Ended: the select shows the choice that was made, and nothing else.
    const text = x.winner ? `winner: ${x.winner}` : "no winner chosen";
    winner.replaceChildren(abscope.el("option", { value: x.winner || "", text, selected: true }));
  } else {
    winner.replaceChildren(abscope.el("option", { value: "", text: "no winner" }),
      ...x.variants.map((v) => abscope.el("option", { value: v.name, text: v.name })));
  }
  winner.disabled = !allowed.includes("complete");
  renderOutcome(x);
  document.getElementById("ramp-value").value = x.traffic_percentage;
  document.getElementById("ramp").disabled = ["completed", "stopped"].includes(x.status);
  renderGuardrailBanner(x);
  document.getElementById("audit").replaceChildren(...x.audit.map((entry) => {
    const c = entry.changes || {};
    const by = c.by ? ` by ${c.by}` : "";
    return abscope.el("li", { "data-action": entry.action },
      abscope.el("span", { text: auditText(entry.action, c) }),
      abscope.el("span", { class: "muted", text: `${by}, ${abscope.when(entry.at)}` }));
  }));
}

// How an ended experiment ended, in words, above the figures.
function renderOutcome(x) {
  const box = document.getElementById("outcome");
  if (x.status !== "completed" && x.status !== "stopped") { box.classList.add("hidden"); return; }
  const verb = x.status === "completed" ? "Completed" : "Stopped";
  const on = x.ended_at ? ` on ${abscope.when(x.ended_at)}` : "";
  const chosen = x.winner ? ` with ${x.winner} chosen as the winner` : " with no winner chosen";
  box.textContent = `${verb}${on}${chosen}. The figures are those at the end.`;
  box.classList.remove("hidden");
}

// --- the audit trail in words ------------------------------------------------------------

const TRANSITIONS = {
  start: "started", pause: "paused", resume: "resumed", complete: "completed", stop: "stopped",
};

const FIELDS = {
  name: ["name", (v) => `\u201c${v}\u201d`],
  description: ["description", (v) => (v ? `\u201c${v}\u201d` : "none")],
  traffic_percentage: ["traffic", (v) => `${abscope.num(v, 6)}%`],
  min_sample_size: ["minimum sample size", (v) => `${abscope.int(v)} users`],
  confidence_level: ["confidence level", (v) => percentText(v)],
  power: ["power", (v) => percentText(v)],
  min_relative_lift: ["minimum lift", (v) => (v === null || v === undefined ? "none" : abscope.signedPct(v))],
  phase: ["phase", (v) => String(v)],
  weights: ["weights", (v) => Object.entries(v || {}).map(([name, w]) => `${name} ${percentText(w)}`).join(", ")],
  // A draft's own fields (service/experiments.py _DRAFT_ONLY), each audited as from/to.
  variants: ["variants", (v) => (v || []).map((x) => `${x.name} (${x.model_id}, ${percentText(x.weight)})`).join(", ") || "none"],
  metric_type: ["metric type", (v) => String(v)],
  allocation: ["allocation", (v) => String(v)],
  layer: ["layer", (v) => (v === null || v === undefined || v === "" ? "none" : String(v))],
  sticky: ["sticky assignment", (v) => (v ? "on" : "off")],
  sequential: ["testing", (v) => (v ? "sequential" : "fixed horizon")],
  metrics: ["metrics", (v) => (v || []).map((m) => `${m.name} (${m.role})`).join(", ") || "none"],
};

// A share (0.955) as a percent without trailing zeros ("95.5%").
function percentText(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return abscope.undefinedText;
  return `${+(x * 100).toFixed(4)}%`;
}

function fieldChange(name, change) {
  const [label, format] = FIELDS[name] || [name.replace(/_/g, " "), (v) => JSON.stringify(v)];
  if (name === "forced_variants") {
    const pairs = Object.entries(change || {});
    return pairs.length
      ? `forced variants set: ${pairs.map(([user, variant]) => `${user} \u2192 ${variant}`).join(", ")}`
      : "forced variants cleared";
  }
  if (change && typeof change === "object" && "from" in change && "to" in change) {
    if (name === "description") return "description changed";
    return `${label} ${format(change.from)} \u2192 ${format(change.to)}`;
  }
  return `${label} ${format(change)}`;
}

function metricText(m) {
  const parts = [m.kind, m.role];
  if (m.role === "guardrail") {
    if (m.margin !== null && m.margin !== undefined) parts.push(`margin ${percentText(m.margin)}`);
    parts.push(m.higher_is_better === false ? "lower is better" : "higher is better");
    if (m.action) parts.push(`on breach: ${m.action}`);
  }
  return `metric ${m.name} added (${parts.join(", ")})`;
}

function breachText(c) {
  const interval = Array.isArray(c.interval)
    ? ` (interval ${abscope.signedPct(c.interval[0])} to ${abscope.signedPct(c.interval[1])})` : "";
  const margin = c.margin === null || c.margin === undefined ? "" : ` against a margin of ${percentText(c.margin)}`;
  const action = c.action === "pause" ? "; the experiment is paused" : c.action === "alert" ? "; alert raised" : "";
  return `guardrail ${c.metric} breached for ${c.variant}: ${abscope.signedPct(c.estimate)}${interval}${margin}${action}`;
}

// One audit entry's action and changes as a phrase ("traffic 10% → 50%"); who acted and
// when are added by the caller.
function auditText(action, c) {
  if (action === "create") return "created";
  if (TRANSITIONS[action]) {
    let text = TRANSITIONS[action];
    if (action === "complete") text += c.winner ? ` with ${c.winner} as the winner` : " with no winner";
    return text;
  }
  if (action === "metric_added" && c.metric) return metricText(c.metric);
  if (action === "guardrail_breach") return breachText(c);
  const changes = Object.entries(c).filter(([name]) => name !== "by")
    .map(([name, change]) => fieldChange(name, change));
  if (action === "update") return changes.length ? changes.join("; ") : "updated";
  return [action.replace(/_/g, " "), ...changes].join(": ");
}

// The latest guardrail breach the monitor recorded, as a banner in words.
function renderGuardrailBanner(x) {
  const banner = document.getElementById("guardrail-banner");
  const breaches = x.audit.filter((entry) => entry.action === "guardrail_breach");
  if (!breaches.length) { banner.classList.add("hidden"); return; }
  const entry = breaches[breaches.length - 1];
  const c = entry.changes || {};
  const interval = Array.isArray(c.interval)
    ? ` (interval ${abscope.signedPct(c.interval[0])} to ${abscope.signedPct(c.interval[1])})` : "";
  const margin = c.margin === undefined || c.margin === null ? "" : ` against a margin of ${abscope.pct(c.margin, 1)}`;
  const when = abscope.when(entry.at);
  const acted = c.action === "pause"
    ? `The monitor paused the experiment on ${when}: everyone is served the control.`
    : `The monitor raised an alert on ${when}; traffic was not changed.`;
  banner.textContent = `Guardrail ${c.metric} breached for ${c.variant}: ${abscope.signedPct(c.estimate)}${interval}${margin}. ${acted}`;
  banner.classList.remove("hidden");
}

function describeDesign(x) {
  const lift = x.min_relative_lift === null || x.min_relative_lift === undefined
    ? "no minimum lift set" : `minimum lift ${abscope.signedPct(x.min_relative_lift)}`;
  return `${lift} · power ${abscope.pct(x.power, 0)}`;
}

const MODES = {
  sequential: { name: "sequential", interval: "CS", other: "Fixed-horizon" },
  fixed_horizon: { name: "fixed-horizon", interval: "CI", other: "Sequential" },
};

// A probability at a precision the data supports: never "100.0%" or "0.0%".
function chance(p) {
  if (p === null || p === undefined || !Number.isFinite(p)) return abscope.undefinedText;
  if (p > 0.999) return ">99.9%";
  if (p < 0.001) return "<0.1%";
  return abscope.pct(p, 1);
}

// Each cell is labelled with its column's heading, for the stacked cards at phone width.
// The roles are explicit because a table drawn as blocks loses them in some browsers.
function labelCells(table) {
  table.setAttribute("role", "table");
  const headings = [...table.querySelectorAll("thead th")].map((th) => {
    th.setAttribute("role", "columnheader");
    return th.textContent.trim();
  });
  for (const group of table.querySelectorAll("thead, tbody")) group.setAttribute("role", "rowgroup");
  for (const row of table.querySelectorAll("tr")) row.setAttribute("role", "row");
  for (const row of table.querySelectorAll("tbody tr")) {
    [...row.children].forEach((cell, index) => {
      cell.setAttribute("role", "cell");
      cell.setAttribute("data-label", headings[index] || "");
    });
  }
}

function renderResults(r) {
  lastResults = r;
  const binary = r.metric_type === "binary";
  const format = binary ? abscope.pct : (x) => abscope.num(x);
  const diff = binary ? (x) => abscope.signedPct(x, 2) : abscope.num;
  const mode = MODES[r.inference] || MODES.sequential;
  document.getElementById("value-heading").textContent = binary ? "Rate" : "Mean";
  // Every interval and p-value in the main columns comes from the mode in force; the other
  // mode's figures sit in one column labelled as such, for reference.
  document.getElementById("inference-note").textContent = r.inference === "sequential"
    ? "Sequential testing: always-valid p-values and confidence sequences (CS), safe to check every day. Fixed-horizon figures are for reference only."
    : "Fixed-horizon testing: read once, at the planned sample size. Sequential figures are for reference only.";
  document.getElementById("absolute-ci-heading").textContent = `${mode.interval} (absolute)`;
  document.getElementById("relative-ci-heading").textContent = `${mode.interval} (relative)`;
  document.getElementById("p-heading").title = `${mode.name} p-value`;
  document.getElementById("adjusted-p-heading").title = `${mode.name} p-value, adjusted for multiple comparisons`;
  document.getElementById("secondary-heading").textContent = `${mode.other} (reference)`;
  const weights = Object.fromEntries(experiment.variants.map((v) => [v.name, v]));
  document.querySelector("#variants-table tbody").replaceChildren(...r.variants.map((v) =>
    abscope.el("tr", { "data-variant": v.name },
      abscope.el("td", {}, v.name, v.is_control ? abscope.badge("control") : null),
      abscope.el("td", { text: weights[v.name] ? weights[v.name].model_id : "" }),
      abscope.el("td", { class: "num", text: abscope.pct(v.weight, 0) }),
      abscope.el("td", { class: "num", text: abscope.int(v.n) }),
      abscope.cell(v.mean, format(v.mean), "no_samples", { class: "num" }),
      abscope.el("td", { text: abscope.range(v.ci.lower, v.ci.upper, format) }),
      abscope.cell(v.prob_best, chance(v.prob_best), "insufficient_samples", { class: "num" }))));
  document.querySelector("#comparisons-table tbody").replaceChildren(...r.comparisons.map((c) => {
    const primary = c.primary, secondary = c.secondary;
    const verdict = primary.significant ? "significant" : "not yet";
    const secondaryText = `${secondary.significant ? "significant" : "not significant"} (p ${abscope.pValue(secondary.adjusted_p_value)}; ${abscope.interval(secondary.relative_ci, abscope.signedPct)})`;
    const relReason = c.relative.reason || primary.reason;
    return abscope.el("tr", { "data-variant": c.variant, "data-basis": primary.basis },
      abscope.el("td", {}, c.variant, " ", abscope.badge(verdict, primary.significant ? "significant" : "")),
      abscope.cell(c.absolute.estimate, diff(c.absolute.estimate), c.absolute.reason, { class: "num" }),
      abscope.cell(primary.absolute_ci, abscope.interval(primary.absolute_ci, diff), primary.reason || c.absolute.reason),
      abscope.cell(c.relative.estimate, abscope.signedPct(c.relative.estimate), c.relative.reason, { class: "num" }),
      abscope.cell(primary.relative_ci, abscope.interval(primary.relative_ci, abscope.signedPct), relReason),
      abscope.cell(primary.p_value, abscope.pValue(primary.p_value), primary.reason, { class: "num" }),
      abscope.cell(primary.adjusted_p_value, abscope.pValue(primary.adjusted_p_value), primary.reason, { class: "num adjusted-p" }),
      abscope.cell(c.bayesian.chance_to_beat_control, chance(c.bayesian.chance_to_beat_control), c.bayesian.reason, { class: "num" }),
      abscope.el("td", { class: "wrap secondary", "data-basis": secondary.basis, text: secondaryText }),
      abscope.cell(c.power, abscope.pct(c.power, 0), c.power_reason, { class: "num" }));
  }));
  // With one comparison there is nothing to adjust for: the column would repeat p.
  const single = r.comparisons.length < 2;
  document.querySelectorAll("#comparisons-table .adjusted-p").forEach((cell) => cell.classList.toggle("hidden", single));
  for (const id of ["variants-table", "comparisons-table"]) labelCells(document.getElementById(id));
  const d = r.decision;
  document.getElementById("decision").textContent = d.message;
  const ended = r.status === "completed" || r.status === "stopped";
  const extra = [];
  // Once it has ended nothing is still needed: only what it reached is shown.
  if (!ended && d.remaining_samples) extra.push(`${abscope.int(d.remaining_samples)} more users`);
  if (!ended && d.remaining_days) {
    const days = d.remaining_days === 1 ? "day" : "days";
    extra.push(`about ${abscope.int(d.remaining_days)} more ${days} at the observed traffic`);
  }
  if (!ended && d.remaining_samples === null && d.remaining_reason) {
    extra.push(`users still needed: ${abscope.undefinedText} (${abscope.reasonText(d.remaining_reason)})`);
  }
  if (d.daily_users) {
    // An ended experiment's rate is over the days it ran (the service stops at ended_at).
    extra.push(`${abscope.int(d.daily_users)} users a day ${ended ? "while it ran" : "so far"}`);
  }
  document.getElementById("decision-detail").textContent = extra.join(" · ");
  renderSrm(r);
  const note = document.getElementById("adaptive-note");
  note.textContent = r.adaptive_allocation_note || "";
  note.classList.toggle("hidden", !r.adaptive_allocation_note);
}

// --- the sample-ratio checks: chi-square (one look) and sequential (every look) -------------

const SRM_NOTE = "The χ² check is valid when read once: repeated every day it raises false " +
  "alarms more often than its level. The sequential check (Lindon & Malek 2022, a " +
  "Dirichlet-multinomial test) is valid however often it is read.";

// Which test raised the alarm, in words; the banner says so, and the Variants panel lists both.
function renderSrm(r) {
  const chi = r.srm;
  const seq = r.srm_sequential && r.srm_sequential.applicable ? r.srm_sequential : null;
  const adaptive = r.srm_method === "adaptive";
  const chiName = adaptive ? "the check against the logged assignment probabilities" : "the χ² check";
  const chiText = `${chiName} (valid when read once): p = ${abscope.pValue(chi.p_value)}`;
  const seqText = seq
    ? `the sequential check (valid at every look): p = ${abscope.pValue(seq.p_value)}`
    : null;
  const banner = document.getElementById("srm-banner");
  const raised = [seq && seq.mismatch ? seqText : null, chi.mismatch ? chiText : null].filter(Boolean);
  banner.classList.toggle("hidden", raised.length === 0);
  banner.dataset.raisedBy = [seq && seq.mismatch ? "sequential" : null,
    chi.mismatch ? (adaptive ? "adaptive" : "chi_square") : null].filter(Boolean).join(" ");
  if (raised.length) {
    const expected = adaptive ? "as the logged assignment probabilities predict" : "as configured";
    let text = `Sample ratio mismatch: users are not split ${expected}. Raised by ${raised.join(", and by ")}.`;
    if (seq && !seq.mismatch) {
      text += ` The sequential check, safe under daily peeking, does not alarm (p = ${abscope.pValue(seq.p_value)}): a χ² alarm alone can be a false one if the results are read every day.`;
    }
    banner.textContent = `${text} Check assignment and logging before trusting these results.`;
  }
  const checks = document.getElementById("srm-checks");
  const parts = [`${chiText}${chi.mismatch ? " (mismatch)" : ""}`];
  if (seq) {
    parts.push(`${seqText}, alarm below ${abscope.num(seq.threshold)}${seq.mismatch ? " (mismatch)" : ""}`);
  } else if (r.srm_sequential && r.srm_sequential.reason) {
    parts.push(`the sequential check: ${abscope.undefinedText} (${r.srm_sequential.reason})`);
  }
  checks.replaceChildren(
    abscope.el("span", { id: "srm-checks-figures", text: `Sample ratio: ${parts.join("; ")}.` }),
    " ", seq ? SRM_NOTE : "");
}

// --- CUPED: the primary metric adjusted by each user's pre-exposure covariate --------------

const CUPED_ABSENT = {
  no_covariates: "No covariates sent: send covariate (the user's metric before the experiment, " +
    "e.g. over the previous 28 days) with the exposures, or backfill it with POST " +
    "/experiments/{id}/covariates, to reduce the variance (CUPED).",
  adaptive_allocation: "CUPED is not applied to bandit experiments: the arms' shares move " +
    "with the outcomes, so the adjusted difference of means is not the effect.",
};

// A CUPED figure, or an em dash with the comparison's reason in words.
function cupedCell(value, text, c, attrs = {}) {
  if (value !== null && value !== undefined) return abscope.el("td", Object.assign({}, attrs, { text }));
  return abscope.el("td", Object.assign({}, attrs, { text: abscope.undefinedText,
    title: c.reason_text || abscope.reasonText(c.reason), "data-reason": c.reason || "undefined" }));
}

function thetaText(c) {
  if (c.theta_control === null) return c.theta_method === "pooled" ? "pooled" : "per arm";
  if (c.theta_method === "pooled") return `pooled, θ = ${abscope.num(c.theta_control)}`;
  return `per arm, θ = ${abscope.num(c.theta_control)} (control), ${abscope.num(c.theta_treatment)} (${c.variant})`;
}

function renderCuped(r) {
  const section = r.cuped;
  const panel = document.getElementById("cuped-panel");
  const absent = document.getElementById("cuped-absent");
  const named = abscopeMetricCuped.render(r); // named metrics' blocks (metric_cuped.js)
  if (named) labelCells(document.getElementById("cuped-metrics-table"));
  panel.classList.toggle("hidden", !section && !named);
  document.getElementById("cuped-primary").classList.toggle("hidden", !section);
  if (!section) {
    const reason = (r.null_reasons || {}).cuped;
    absent.textContent = reason ? (CUPED_ABSENT[reason] || `CUPED: ${abscope.reasonText(reason)}`) : "";
    absent.classList.toggle("hidden", !reason);
    return;
  }
  absent.classList.add("hidden");
  const binary = r.metric_type === "binary";
  const diff = binary ? (x) => abscope.signedPct(x, 2) : abscope.num;
  const sequential = (section.comparisons[0] || {}).inference === "sequential";
  const interval = sequential ? "CS" : "CI";
  document.getElementById("cuped-ci-heading").textContent = `Adjusted ${interval}`;
  document.getElementById("cuped-unadjusted-ci-heading").textContent = `Unadjusted ${interval}`;
  document.getElementById("cuped-p-heading").textContent = `${sequential ? "Sequential" : "Fixed-horizon"} p (CUPED)`;
  const coverage = section.users ? section.covariate_users / section.users : null;
  const mode = sequential
    ? "Sequential: the always-valid confidence sequence and p-value are the mixture test applied " +
      "to the adjusted estimate and its variance, which keeps them valid at every look (Lindon, " +
      "Ham, Tingley and Bojinov 2022); fixed-horizon figures are in the tooltip."
    : "Fixed-horizon: the normal interval and p-value of the adjusted estimate, read once.";
  const note = document.getElementById("cuped-note");
  note.replaceChildren(
    abscope.el("span", { id: "cuped-coverage",
      text: `${abscope.int(section.covariate_users)} of ${abscope.int(section.users)} users have a covariate (${abscope.pct(coverage, 0)}).` }),
    ` The ${binary ? "conversion rate" : "mean"} of ${section.metric} is adjusted by it (CUPED, ` +
      "Deng, Xu, Kohavi and Walker 2013): the same expectation as the plain difference, less noise. ",
    abscope.el("span", { id: "cuped-mode", "data-inference": sequential ? "sequential" : "fixed", text: mode }),
    coverage !== null && coverage < 1 ? ` ${section.imputation}` : "");
  note.title = section.method;
  const plain = Object.fromEntries(r.comparisons.map((c) => [c.variant, c]));
  document.querySelector("#cuped-table tbody").replaceChildren(...section.comparisons.map((c) => {
    const unadjusted = plain[c.variant];
    const unadjustedCi = unadjusted && unadjusted.primary ? unadjusted.primary.absolute_ci : null;
    const other = sequential ? c.fixed : c.sequential;
    const otherName = sequential ? "Fixed-horizon CI (reference)" : "Sequential CS (reference)";
    const otherRange = other.difference_interval
      ? abscope.range(other.difference_interval[0], other.difference_interval[1], diff)
      : abscope.undefinedText;
    const tooltip = `${otherName}: ${otherRange}, p ${abscope.pValue(other.p_value)}`;
    return abscope.el("tr", { "data-variant": c.variant, "data-theta": c.theta_method },
      abscope.el("td", { text: c.variant }),
      cupedCell(c.difference, diff(c.difference), c, { class: "num", "data-field": "difference" }),
      cupedCell(c.difference_interval,
        c.difference_interval && abscope.range(c.difference_interval[0], c.difference_interval[1], diff),
        c, { "data-field": "difference_interval", title: tooltip }),
      cupedCell(c.unadjusted_difference, diff(c.unadjusted_difference), c, { class: "num", "data-field": "unadjusted_difference" }),
      abscope.cell(unadjustedCi, abscope.interval(unadjustedCi, diff), unadjusted && unadjusted.primary ? unadjusted.primary.reason : null,
        { "data-field": "unadjusted_interval" }),
      cupedCell(c.p_value, abscope.pValue(c.p_value), c, { class: "num", "data-field": "p_value" }),
      cupedCell(c.variance_reduction, abscope.pct(c.variance_reduction, 1), c, { class: "num", "data-field": "variance_reduction" }),
      abscope.el("td", { "data-field": "theta", title: c.theta_reason, text: thetaText(c) }));
  }));
  labelCells(document.getElementById("cuped-table"));
  const reasons = [...new Set(section.comparisons.map((c) => c.theta_reason))];
  document.getElementById("cuped-theta").textContent = reasons.map((why) => `θ: ${why}.`).join(" ");
}

const VERDICTS = {
  non_inferior: ["passing", "significant"],
  breach: ["failing", "srm"],
  better: ["better", "significant"],
  worse: ["worse", "srm"],
};

function verdictBadge(verdict) {
  const [text, kind] = VERDICTS[verdict] || ["inconclusive", "underpowered"];
  return abscope.badge(text, kind);
}

function metricFormat(kind) {
  return kind === "binary" ? (x) => abscope.pct(x, 2) : (x) => abscope.num(x);
}

function testText(metric, c) {
  if (metric.role === "guardrail") {
    const side = metric.higher_is_better ? "higher is better" : "lower is better";
    return `non-inferiority, margin ${abscope.pct(metric.margin, 1)} (${side}), p ${abscope.pValue(c.p_value)}`;
  }
  if (metric.role === "secondary") {
    return `p ${abscope.pValue(c.p_value)}, corrected ${abscope.pValue(c.adjusted_p_value)}`;
  }
  return `p ${abscope.pValue(c.p_value)}`;
}

function renderMetrics(r) {
  const metrics = r.metrics || [];
  const control = experiment.variants.find((v) => v.is_control) || experiment.variants[0];
  const rows = [];
  for (const m of metrics) {
    const format = metricFormat(m.kind);
    const base = (m.variants || {})[control.name] || {};
    for (const c of m.comparisons || []) {
      const own = (m.variants || {})[c.variant] || {};
      const reason = c.reason || undefined;
      const interval = Array.isArray(c.interval) ? { lower: c.interval[0], upper: c.interval[1] } : null;
      rows.push(abscope.el("tr", { "data-metric": m.name, "data-variant": c.variant, "data-verdict": c.verdict },
        abscope.el("td", { class: "wrap", text: m.name, title: `${m.kind} metric` }),
        abscope.el("td", { text: m.role }),
        abscope.el("td", { text: c.variant }),
        ...(m.kind === "quantile" // its figures per quantile are in its card (quantiles.js)
          ? [0, 1].map(() => abscope.el("td", { class: "num muted", text: "see latency card" }))
          : [abscope.cell(base.value, format(base.value), base.value_reason, { class: "num" }),
            abscope.cell(own.value, format(own.value), own.value_reason, { class: "num" })]),
        abscope.cell(c.estimate, abscope.signedPct(c.estimate), reason, { class: "num" }),
        abscope.cell(interval, abscope.interval(interval, abscope.signedPct), reason),
        abscope.el("td", { class: "wrap", text: testText(m, c), title: c.inference === "sequential" ? "always-valid (sequential)" : "fixed-horizon" }),
        abscope.el("td", { title: c.reason_text || "" }, verdictBadge(c.verdict))));
    }
  }
  document.querySelector("#metrics-table tbody").replaceChildren(...rows);
  labelCells(document.getElementById("metrics-table"));
  const rule = r.decision_rule;
  document.getElementById("decision-rule").textContent = rule ? rule.sentence : "";
  const modes = new Set(metrics.flatMap((m) => (m.comparisons || []).map((c) => c.inference)));
  const correction = { holm: "Holm", bh: "Benjamini-Hochberg" }[rule && rule.correction] || "no";
  document.getElementById("metrics-note").textContent =
    `Effects are relative to the control. Intervals and p-values are ${[...modes].map((x) => x === "sequential" ? "always-valid (sequential)" : "fixed-horizon").join(" and ") || "not available yet"}; secondary metrics get ${correction} correction across metrics and arms; guardrails are one-sided non-inferiority tests against their margin.`;
}

const CHARTS = ["chart-conversion", "chart-lift", "chart-samples", "chart-posterior"];

// A chart box's spinner goes when its figure is drawn (or when the charts cannot load).
function loaded(node, failed) {
  node.classList.remove("detail-loading");
  node.removeAttribute("aria-busy");
  const spinner = node.querySelector(".detail-spinner");
  if (failed) {
    if (spinner) { spinner.textContent = "The chart could not be loaded."; spinner.classList.add("failed"); }
  } else if (spinner) {
    spinner.remove();
  }
}

async function plotted(id, figure) {
  const node = document.getElementById(id);
  await abscope.plot(id, figure);
  loaded(node, false);
}

async function renderCharts() {
  let charts;
  try {
    charts = await abscope.api("GET", `/experiments/${experimentId}/charts`);
  } catch (e) {
    CHARTS.forEach((id) => loaded(document.getElementById(id), true));
    throw e;
  }
  await Promise.all([
    plotted("chart-conversion", charts.conversion),
    plotted("chart-lift", charts.lift),
    plotted("chart-samples", charts.samples),
    plotted("chart-posterior", charts.posterior),
  ]);
  const box = document.getElementById("metric-figures");
  const figures = charts.metrics || {};
  box.replaceChildren(...Object.keys(figures).map((name) =>
    abscope.el("div", { class: "figure", id: `chart-metric-${name}`, "data-metric": name })));
  for (const [name, figure] of Object.entries(figures)) abscope.plot(`chart-metric-${name}`, figure);
}

// The experiment is not there (or the key cannot see it): a not-found state, not a skeleton.
function showNotFound() {
  document.title = "Experiment not found · abscope";
  document.querySelector("main").classList.add("detail-missing");
  document.getElementById("not-found").classList.remove("hidden");
  document.getElementById("title").textContent = "Experiment not found";
}

// Draw a results body: the variants and comparisons, the metrics and the CUPED panel here,
// and the cards of other scripts (adaptive.js, quantiles.js), which listen for the
// "abscope:results" event instead of reading the results again.
function showResults(r) {
  renderResults(r);
  renderMetrics(r);
  renderCuped(r);
  document.dispatchEvent(new CustomEvent("abscope:results", { detail: r }));
}

async function load() {
  try {
    renderConfig(await abscope.api("GET", `/experiments/${experimentId}`));
  } catch (e) {
    if (e.status === 404) showNotFound();
    showError(e.message);
    CHARTS.forEach((id) => loaded(document.getElementById(id), true));
    return;
  }
  try {
    showResults(await abscope.api("GET", `/experiments/${experimentId}/results`));
    await renderCharts();
  } catch (e) {
    showError(e.message);
  }
}

// Why completing with this winner needs a second look, or null when it does not: a
// treatment that is not significantly better than the control, or the control while a
// treatment is significantly better.
function completionWarning(winner) {
  if (!winner || !lastResults || !experiment) return null;
  const comparisons = lastResults.comparisons || [];
  const control = experiment.variants.find((v) => v.is_control) || experiment.variants[0];
  if (winner === control.name) {
    const better = comparisons.filter((c) => c.primary.significant && c.relative.estimate > 0);
    if (!better.length) return null;
    return `${better.map((c) => c.variant).join(", ")} ${better.length === 1 ? "is" : "are"} significantly better than ${control.name}, the control. Complete with ${winner} as the winner anyway?`;
  }
  const c = comparisons.find((x) => x.variant === winner);
  if (!c || c.primary.significant) return null;
  const p = c.primary.p_value === null || c.primary.p_value === undefined
    ? "its p-value cannot be computed yet" : `p = ${abscope.pValue(c.primary.p_value)}`;
  return `${winner} is not significantly different from ${control.name}, the control (${p}; relative lift ${abscope.signedPct(c.relative.estimate)}, ${abscope.interval(c.primary.relative_ci, abscope.signedPct)}). Choosing it as the winner may ship a change that does nothing, or harm. Complete anyway?`;
}

// An accessible modal dialog (focus moves into it, Escape cancels): resolves to true when
// the user confirms.
function confirmComplete(text) {
  const dialog = document.getElementById("confirm-complete");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

async function act(action) {
  const chosen = document.getElementById("winner").value;
  const body = action === "complete" && chosen ? { winner: chosen } : undefined;
  if (action === "complete") {
    const warning = completionWarning(chosen);
    if (warning && !(await confirmComplete(warning))) return;
  }
  try {
    renderConfig(await abscope.api("POST", `/experiments/${experimentId}/${action}`, body));
    document.getElementById("error").classList.add("hidden");
    if (action === "complete" || action === "stop") {
      showResults(await abscope.api("GET", `/experiments/${experimentId}/results`));
    }
  } catch (e) {
    showError(e.message);
  }
}

async function ramp() {
  const error = document.getElementById("ramp-error");
  error.textContent = "";
  const value = Number(document.getElementById("ramp-value").value);
  try {
    renderConfig(await abscope.api("PATCH", `/experiments/${experimentId}`, { traffic_percentage: value }));
  } catch (e) {
    error.textContent = e.message;
  }
}

async function saveDesign() {
  const error = document.getElementById("design-error");
  error.textContent = "";
  const lift = document.getElementById("design-lift").value.trim();
  const body = {
    min_relative_lift: lift === "" ? null : Number(lift) / 100,
    power: Number(document.getElementById("design-power").value) / 100,
  };
  try {
    renderConfig(await abscope.api("PATCH", `/experiments/${experimentId}`, body));
    renderResults(await abscope.api("GET", `/experiments/${experimentId}/results`));
  } catch (e) {
    error.textContent = e.message;
  }
}

async function explain(event) {
  event.preventDefault();
  const user = document.getElementById("explain-user").value;
  const box = document.getElementById("explain-result");
  try {
    const x = await abscope.api("GET", `/experiments/${experimentId}/explain?user_id=${encodeURIComponent(user)}`);
    const rows = [
      ["Variant", x.variant_name || "not in the experiment"],
      ["Reason", x.reason],
      ["Traffic gate bucket", x.gate_bucket === null ? "–" : `${abscope.num(x.gate_bucket, 5)} (in if below ${abscope.num(x.traffic_percentage / 100, 4)})`],
      ["Variant bucket", x.variant_bucket === null ? "–" : abscope.num(x.variant_bucket, 5)],
      ["Ranges", Object.entries(x.ranges).map(([name, [lo, hi]]) => `${name} [${abscope.num(lo, 4)}, ${abscope.num(hi, 4)})`).join(", ") || "–"],
      ["Sticky", x.sticky ? "yes" : "no"],
      ["Forced", x.forced ? "yes" : "no"],
      ["Layer", x.layer ? `${x.layer} (bucket ${abscope.num(x.layer_bucket, 5)})` : "none"],
    ];
    box.replaceChildren(abscope.el("table", { id: "explain-table" },
      abscope.el("tbody", {}, rows.map(([k, v]) => abscope.el("tr", {}, abscope.el("th", { text: k }), abscope.el("td", { text: v }))))));
  } catch (e) {
    box.replaceChildren(abscope.el("p", { class: "field-error", text: e.message }));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("#lifecycle button").forEach((button) => {
    button.addEventListener("click", () => act(button.dataset.action));
  });
  document.getElementById("ramp").addEventListener("click", ramp);
  document.getElementById("design").addEventListener("click", saveDesign);
  document.getElementById("explain-form").addEventListener("submit", explain);
  load();
});
