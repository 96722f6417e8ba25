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
  document.getElementById("config-summary").textContent = parts.join(" · ");
  const allowed = ACTIONS[x.status] || [];
  document.querySelectorAll("#lifecycle button").forEach((button) => {
    button.disabled = !allowed.includes(button.dataset.action);
  });
  const winner = document.getElementById("winner");
  winner.replaceChildren(abscope.el("option", { value: "", text: "no winner" }),
    ...x.variants.map((v) => abscope.el("option", { value: v.name, text: v.name })));
  winner.disabled = !allowed.includes("complete");
  document.getElementById("ramp-value").value = x.traffic_percentage;
  document.getElementById("ramp").disabled = ["completed", "stopped"].includes(x.status);
  document.getElementById("audit").replaceChildren(...x.audit.map((entry) => {
    const when = new Date(entry.at).toLocaleString("en-GB", { timeZone: "UTC" });
    const changes = Object.keys(entry.changes || {}).length
      ? ` — ${JSON.stringify(entry.changes)}` : "";
    return abscope.el("li", {}, abscope.el("strong", { text: entry.action }),
      ` ${when} UTC${changes}`);
  }));
}

function renderResults(r) {
  const binary = r.metric_type === "binary";
  const format = binary ? abscope.pct : (x) => abscope.num(x);
  document.getElementById("value-heading").textContent = binary ? "Rate" : "Mean";
  const weights = Object.fromEntries(experiment.variants.map((v) => [v.name, v]));
  document.querySelector("#variants-table tbody").replaceChildren(...r.variants.map((v) =>
    abscope.el("tr", { "data-variant": v.name },
      abscope.el("td", {}, v.name, v.is_control ? abscope.badge("control") : null),
      abscope.el("td", { text: weights[v.name] ? weights[v.name].model_id : "" }),
      abscope.el("td", { class: "num", text: abscope.pct(v.weight, 0) }),
      abscope.el("td", { class: "num", text: abscope.int(v.n) }),
      abscope.el("td", { class: "num", text: format(v.mean) }),
      abscope.el("td", { text: abscope.range(v.ci.lower, v.ci.upper, format) }),
      abscope.el("td", { class: "num", text: abscope.pct(v.prob_best, 1) }))));
  document.querySelector("#comparisons-table tbody").replaceChildren(...r.comparisons.map((c) => {
    const seq = c.sequential;
    const verdict = c.sequential_significant ? "significant" : "not yet";
    return abscope.el("tr", { "data-variant": c.variant },
      abscope.el("td", { text: c.variant }),
      abscope.el("td", { class: "num", text: binary ? abscope.signedPct(c.absolute.estimate, 2) : abscope.num(c.absolute.estimate) }),
      abscope.el("td", { text: abscope.range(c.absolute.ci.lower, c.absolute.ci.upper, binary ? (x) => abscope.signedPct(x, 2) : abscope.num) }),
      abscope.el("td", { class: "num", text: abscope.signedPct(c.relative.estimate) }),
      abscope.el("td", { text: abscope.range(c.relative.ci.lower, c.relative.ci.upper, abscope.signedPct) }),
      abscope.el("td", { class: "num", text: abscope.pValue(c.p_value) }),
      abscope.el("td", { class: "num", text: abscope.pValue(c.adjusted_p_value) }),
      abscope.el("td", { class: "num", text: abscope.pct(c.bayesian.chance_to_beat_control, 1) }),
      abscope.el("td", { class: "wrap", text: `${verdict} (p ${abscope.pValue(c.sequential_adjusted_p_value)}; ${abscope.range(seq.ci_lower, seq.ci_upper, binary ? (x) => abscope.signedPct(x, 2) : abscope.num)})` }),
      abscope.el("td", { class: "num", text: c.power === null ? "–" : abscope.pct(c.power, 0) }));
  }));
  const d = r.decision;
  document.getElementById("decision").textContent = d.message;
  const extra = [];
  if (d.remaining_samples) extra.push(`${abscope.int(d.remaining_samples)} more users`);
  if (d.remaining_days) {
    const days = d.remaining_days === 1 ? "day" : "days";
    extra.push(`about ${abscope.int(d.remaining_days)} more ${days} at the observed traffic`);
  }
  if (d.daily_users) extra.push(`${abscope.int(d.daily_users)} users a day so far`);
  document.getElementById("decision-detail").textContent = extra.join(" · ");
  const banner = document.getElementById("srm-banner");
  if (r.srm.mismatch) {
    banner.textContent = `Sample ratio mismatch: users are not split as configured (p = ${abscope.pValue(r.srm.p_value)}). Check assignment and logging before trusting these results.`;
    banner.classList.remove("hidden");
  } else {
    banner.classList.add("hidden");
  }
}

async function renderCharts() {
  const charts = await abscope.api("GET", `/experiments/${experimentId}/charts`);
  abscope.plot("chart-conversion", charts.conversion);
  abscope.plot("chart-lift", charts.lift);
  abscope.plot("chart-samples", charts.samples);
  abscope.plot("chart-posterior", charts.posterior);
}

async function load() {
  try {
    renderConfig(await abscope.api("GET", `/experiments/${experimentId}`));
    renderResults(await abscope.api("GET", `/experiments/${experimentId}/results`));
    await renderCharts();
  } catch (e) {
    showError(e.message);
  }
}

async function act(action) {
  const body = action === "complete" && document.getElementById("winner").value
    ? { winner: document.getElementById("winner").value } : undefined;
  try {
    renderConfig(await abscope.api("POST", `/experiments/${experimentId}/${action}`, body));
    document.getElementById("error").classList.add("hidden");
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
  document.getElementById("explain-form").addEventListener("submit", explain);
  load();
});
