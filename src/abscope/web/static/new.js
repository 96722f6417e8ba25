// The experiment form: create at /new, or change a draft at /edit/<id>. Variant weights are
// percentages that split equally when rows are added or removed; the API's validation
// errors are shown in words beside their fields.
"use strict";

const SLUG_RULE = "Use lower-case letters, digits, - and _ (up to 64), starting with a letter or digit.";
// Each weight may be rounded to 0.1 point: the total may be off 100 by that much per row.
const WEIGHT_ROUNDING = 0.05;
const FORM_DEFAULTS = { layer: "", min_relative_lift: "" };

let variantCount = 0;
let editing = null; // the draft being edited, as loaded
let weightsEdited = false; // a weight was typed or rows changed since the draft loaded

// A fraction as the percentage typed in a field (0.07 -> 7, not 7.000000000000001).
function toPercent(x) { return Number((x * 100).toPrecision(12)); }

function option(value, text, selected) {
  return abscope.el("option", { value, text, selected: selected ? true : null });
}

// --- variants -------------------------------------------------------------------------

function variantRow(spec) {
  const i = variantCount++;
  const weight = abscope.el("input", { name: "variant-weight", type: "number", step: "any",
    min: "0", max: "100", value: spec.weight === undefined ? "" : String(spec.weight),
    oninput: () => { weightsEdited = true; showTotal(); } });
  const row = abscope.el("div", { class: "variant-row", "data-variant": i },
    abscope.el("label", {}, "Name", abscope.el("input", { name: "variant-name", value: spec.name,
      oninput: refreshForcedChoices }),
      abscope.el("span", { class: "field-error", "data-variant-field": "name" })),
    abscope.el("label", {}, "Model id", abscope.el("input", { name: "variant-model", value: spec.model_id || "" }),
      abscope.el("span", { class: "field-error", "data-variant-field": "model_id" })),
    abscope.el("label", {}, "Weight %", weight,
      abscope.el("span", { class: "field-error", "data-variant-field": "weight" })),
    abscope.el("button", { type: "button", class: "secondary remove", text: "Remove",
      "aria-label": `Remove variant ${spec.name}`,
      onclick: () => { row.remove(); variantsChanged(); } }));
  // Kept as loaded, so that an edit does not drop what the form does not show.
  row.extra = { description: spec.description || "", is_control: Boolean(spec.is_control),
    fraction: spec.fraction };
  return row;
}

function variantRows() { return [...document.querySelectorAll("#variants .variant-row")]; }

// An equal split in percent, at two decimals, the last row taking the remainder so that
// the fields add up to exactly 100.
function equalSplit(count) {
  const each = Math.floor(10000 / count) / 100;
  return Array.from({ length: count }, (_, k) =>
    k < count - 1 ? each : Number((100 - each * (count - 1)).toFixed(2)));
}

function variantsChanged() {
  const rows = variantRows();
  rows.forEach((row, index) => { row.dataset.index = String(index); });
  const split = equalSplit(rows.length || 1);
  rows.forEach((row, k) => { row.querySelector("[name=variant-weight]").value = String(split[k]); });
  weightsEdited = true;
  syncRemoveButtons();
  showTotal();
  refreshForcedChoices();
}

// Two variants at least: their Remove buttons are disabled.
function syncRemoveButtons() {
  const rows = variantRows();
  rows.forEach((row) => { row.querySelector("button.remove").disabled = rows.length <= 2; });
}

function typedWeights() {
  return variantRows().map((row) => {
    const text = row.querySelector("[name=variant-weight]").value.trim();
    return text === "" ? NaN : Number(text);
  });
}

function showTotal() {
  const weights = typedWeights();
  const total = weights.reduce((a, b) => a + b, 0);
  const node = document.getElementById("weight-total");
  node.textContent = Number.isFinite(total) ? `Total ${Number(total.toFixed(4))}%` : "Total: give every weight";
  node.classList.toggle("off", !weightsAddUp(weights));
}

function weightsAddUp(weights) {
  if (!weights.every((w) => Number.isFinite(w) && w > 0)) return false;
  const total = weights.reduce((a, b) => a + b, 0);
  return Math.abs(total - 100) <= WEIGHT_ROUNDING * weights.length + 1e-9;
}

// The weights as fractions summing to 1 within 1e-9: each over the total typed (so three
// rows of 33.33 give thirds), the last row taking any remainder of the division.
function fractions(weights) {
  const total = weights.reduce((a, b) => a + b, 0);
  const out = weights.map((w) => w / total);
  const sum = out.reduce((a, b) => a + b, 0);
  if (Math.abs(sum - 1) > 1e-12) {
    out[out.length - 1] = 1 - out.slice(0, -1).reduce((a, b) => a + b, 0);
  }
  return out;
}

// The variants of the body, or an error message for the weights.
function variantsBody() {
  const rows = variantRows();
  const weights = typedWeights();
  let problem = null;
  rows.forEach((row, k) => {
    if (!(Number.isFinite(weights[k]) && weights[k] > 0)) {
      row.querySelector("[data-variant-field=weight]").textContent = "Give a weight above 0%.";
      problem = "Every variant needs a weight above 0%.";
    }
  });
  if (problem) return { problem };
  if (!weightsAddUp(weights)) {
    const total = Number(weights.reduce((a, b) => a + b, 0).toFixed(4));
    return { problem: `The weights add up to ${total}%; they must add up to 100%.` };
  }
  const keep = editing && !weightsEdited && rows.every((row) => row.extra.fraction !== undefined);
  const shares = keep ? rows.map((row) => row.extra.fraction) : fractions(weights);
  return {
    variants: rows.map((row, k) => {
      const variant = {
        name: row.querySelector("[name=variant-name]").value.trim(),
        model_id: row.querySelector("[name=variant-model]").value.trim(),
        weight: shares[k],
      };
      if (row.extra.description) variant.description = row.extra.description;
      if (row.extra.is_control) variant.is_control = true;
      return variant;
    }),
  };
}

// --- metrics --------------------------------------------------------------------------

function metricRow(spec) {
  const field = (label, control, key) => abscope.el("label", {}, label, control,
    abscope.el("span", { class: "field-error", "data-metric-field": key }));
  const margin = abscope.el("input", { name: "metric-margin", type: "number", step: "any", min: "0",
    value: spec.margin === null || spec.margin === undefined ? "5" : String(toPercent(spec.margin)) });
  const action = abscope.el("select", { name: "metric-action" },
    option("pause", "pause: serve the control", spec.action !== "alert"),
    option("alert", "alert only", spec.action === "alert"));
  const role = spec.role;
  const roleSelect = abscope.el("select", { name: "metric-role" },
    option("secondary", "secondary", role === "secondary"), option("guardrail", "guardrail", role === "guardrail"),
    option("primary", "primary", role === "primary"));
  // A quantile guardrail guards one of its quantiles (p50, p95 and p99 unless it lists others).
  const levels = spec.quantiles || [0.5, 0.95, 0.99];
  const guarded = spec.guard_quantile || (levels.includes(0.95) ? 0.95 : levels[levels.length - 1]);
  const guardQuantile = abscope.el("select", { name: "metric-guard-quantile" },
    ...levels.map((q) => option(String(q), `p${Number((q * 100).toFixed(6))}`, q === guarded)));
  const kindSelect = abscope.el("select", { name: "metric-kind" },
    option("binary", "binary (converted)", spec.kind === "binary"), option("mean", "mean per user", spec.kind === "mean"),
    option("ratio", "ratio (per request)", spec.kind === "ratio"),
    option("quantile", "quantiles (latency per request)", spec.kind === "quantile"));
  const sync = () => {
    const guardrail = roleSelect.value === "guardrail";
    margin.disabled = action.disabled = !guardrail;
    guardQuantile.disabled = !(guardrail && kindSelect.value === "quantile");
  };
  roleSelect.addEventListener("change", sync);
  kindSelect.addEventListener("change", sync);
  const higher = spec.higher_is_better === true;
  const row = abscope.el("div", { class: "metric-row" },
    field("Name", abscope.el("input", { name: "metric-name", value: spec.name }), "name"),
    field("Kind", kindSelect, "kind"),
    field("Role", roleSelect, "role"),
    field("Better when", abscope.el("select", { name: "metric-direction" },
      option("lower", "lower", !higher), option("higher", "higher", higher)), "higher_is_better"),
    field("Margin %", margin, "margin"),
    field("On breach", action, "action"),
    field("Guards", guardQuantile, "guard_quantile"),
    abscope.el("button", { type: "button", class: "secondary remove", text: "Remove",
      "aria-label": "Remove metric", onclick: () => { row.remove(); renumberMetrics(); } }));
  // What the form does not show, kept as loaded (the service checks each against the kind).
  row.extra = {};
  for (const key of ["min_samples", "numerator", "denominator", "description", "quantiles"]) {
    if (spec[key]) row.extra[key] = spec[key];
  }
  sync();
  return row;
}

function renumberMetrics() {
  document.querySelectorAll("#metrics .metric-row").forEach((row, index) => {
    row.dataset.index = String(index);
  });
}

function metricsBody() {
  return [...document.querySelectorAll("#metrics .metric-row")].map((row) => {
    const value = (name) => row.querySelector(`[name=${name}]`).value;
    const metric = Object.assign({
      name: value("metric-name").trim(),
      kind: value("metric-kind"),
      role: value("metric-role"),
      higher_is_better: value("metric-direction") === "higher",
    }, row.extra);
    if (metric.kind !== "quantile") delete metric.quantiles;
    if (metric.role === "guardrail") {
      metric.margin = Number(value("metric-margin")) / 100;
      metric.action = value("metric-action");
      if (metric.kind === "quantile") metric.guard_quantile = Number(value("metric-guard-quantile"));
    } else {
      delete metric.min_samples;
    }
    return metric;
  });
}

// --- forced variants ------------------------------------------------------------------

function variantNames() {
  return variantRows().map((row) => row.querySelector("[name=variant-name]").value.trim()).filter(Boolean);
}

function fillChoices(select, chosen) {
  const names = variantNames();
  if (chosen && !names.includes(chosen)) names.push(chosen); // kept: the service names it
  select.replaceChildren(...names.map((n) => option(n, n, n === chosen)));
}

function refreshForcedChoices() {
  document.querySelectorAll("#forced select[name=forced-variant]").forEach((select) => {
    fillChoices(select, select.value);
  });
}

function forcedRow(user, variant) {
  const select = abscope.el("select", { name: "forced-variant" });
  fillChoices(select, variant || variantNames()[variantNames().length - 1]);
  const row = abscope.el("div", { class: "forced-row" },
    abscope.el("label", {}, "User id", abscope.el("input", { name: "forced-user", value: user || "" })),
    abscope.el("label", {}, "Always gets", select),
    abscope.el("button", { type: "button", class: "secondary remove", text: "Remove",
      "aria-label": "Remove forced user", onclick: () => row.remove() }));
  return row;
}

function forcedBody() {
  const forced = {};
  document.querySelectorAll("#forced .forced-row").forEach((row) => {
    const user = row.querySelector("[name=forced-user]").value.trim();
    if (user) forced[user] = row.querySelector("[name=forced-variant]").value;
  });
  return forced;
}

// --- errors in words ------------------------------------------------------------------

const LIMITS = { name: 200, description: 2000, model_id: 256 };
const RANGES = {
  traffic_percentage: "Traffic is a percentage above 0 and at most 100.",
  confidence_level: "The confidence level is a percentage above 50 and below 100 (95 is usual).",
  power: "Power is a percentage above 0 and below 100 (80 is usual).",
  min_sample_size: "The minimum sample size is a whole number of users, 0 or more.",
  min_relative_lift: "The target lift is a percentage above -100 and not 0 (5 for +5%).",
  weight: "Give a weight above 0% and at most 100%.",
  margin: "The margin is a percentage above 0 (5 allows 5% worse), at most 1000.",
};
const LABELS = { name: "a name", model_id: "the model id", description: "the description" };

// A sentence for one API validation issue {loc, msg, type}; the API keeps its precise loc.
function humanMessage(issue) {
  const parts = (issue.loc || []).filter((p) => p !== "body");
  const field = String(parts[parts.length - 1] ?? "");
  const type = issue.type || "";
  const msg = String(issue.msg || "").replace(/^Value error, /, "");
  if (type === "string_pattern_mismatch") return SLUG_RULE;
  if (type === "string_too_short" || type === "missing") return `Give ${LABELS[field] || "a value"}.`;
  if (type === "string_too_long") return `Too long: at most ${LIMITS[field] || 64} characters.`;
  if (/^(greater|less)_than/.test(type) || type === "finite_number") {
    return RANGES[field] || `Out of range: ${msg.toLowerCase()}.`;
  }
  if (/^(int|float)_(type|parsing|from_float)$/.test(type)) {
    return field === "min_sample_size" ? RANGES.min_sample_size : "Enter a number.";
  }
  if (/weights must sum to 1/.test(msg)) {
    const got = Number((msg.match(/got ([-0-9.e+]+)/) || [])[1]);
    return Number.isFinite(got) ? `The weights add up to ${toPercent(got)}%; they must add up to 100%.`
      : "The weights must add up to 100%.";
  }
  let m = msg.match(/power must be greater than alpha = 1 - confidence_level = ([0-9.e-]+)/);
  if (m) return `Power must be above ${toPercent(Number(m[1]))}% (alpha: 100% minus the confidence level).`;
  if (/min_relative_lift must be nonzero/.test(msg)) return RANGES.min_relative_lift;
  if ((m = msg.match(/variant names must be unique; repeated: (.*)/))) return `Each variant needs its own name: ${m[1]} is repeated.`;
  if ((m = msg.match(/metric names must be unique; repeated: (.*)/))) return `Each metric needs its own name: ${m[1]} is repeated.`;
  if ((m = msg.match(/unknown variants: (.*)/))) return `No variant is named ${m[1]}: choose one of the variants above.`;
  if (/must be binary or mean, not ratio/.test(msg)) return "A primary metric is binary or mean, not a ratio.";
  if ((m = msg.match(/primary metric's kind must be (\w+) for metric_type (\w+)/))) {
    return `With metric type ${m[2]}, the primary metric's kind is ${m[1]}.`;
  }
  if ((m = msg.match(/at most one metric may be primary/))) return "Only one metric can be the primary.";
  if ((m = msg.match(/'(\w+)' names the implicit primary metric/))) {
    return `"${m[1]}" is the name of the built-in primary metric: declare it as primary or choose another name.`;
  }
  if (/a guardrail needs a margin/.test(msg)) return "A guardrail needs a margin (5 allows 5% worse).";
  if (/margin must be below 1 when higher is better/.test(msg)) return "When higher is better the margin must be below 100%.";
  if (/user ids must be/.test(msg)) return "Give each forced user an id of 1 to 256 characters.";
  if (/^Field required$/.test(msg)) return "Required.";
  return msg ? msg.charAt(0).toUpperCase() + msg.slice(1) : "Not accepted.";
}

function clearErrors() {
  document.querySelectorAll(".field-error").forEach((node) => { node.textContent = ""; });
  document.getElementById("error").classList.add("hidden");
}

function showFieldError(loc, message) {
  const parts = (loc || []).filter((p) => p !== "body");
  if (parts[0] === "metrics" && parts.length >= 2) {
    const row = document.querySelector(`#metrics .metric-row[data-index="${parts[1]}"]`);
    const slot = row && (row.querySelector(`[data-metric-field="${parts[2]}"]`) || row.querySelector("[data-metric-field=name]"));
    if (slot) { slot.textContent = message; return true; }
  }
  if (parts[0] === "variants" && parts.length >= 3) {
    const row = document.querySelector(`#variants .variant-row[data-index="${parts[1]}"]`);
    const slot = row && row.querySelector(`[data-variant-field="${parts[2]}"]`);
    if (slot) { slot.textContent = message; return true; }
  }
  const slot = document.querySelector(`.field-error[data-field="${parts[0]}"]`);
  if (slot) { slot.textContent = message; return true; }
  return false;
}

// --- the body -------------------------------------------------------------------------

function percentField(data, name) {
  const text = (data.get(name) || "").trim();
  return text === "" ? undefined : Number(text) / 100;
}

function formBody(form) {
  const data = new FormData(form);
  const variants = variantsBody();
  if (variants.problem) return variants;
  const body = {
    name: data.get("name").trim(),
    description: data.get("description"),
    variants: variants.variants,
    traffic_percentage: Number(data.get("traffic_percentage")),
    metric_type: data.get("metric_type"),
    allocation: data.get("allocation"),
    sticky: data.get("sticky") === "on",
    sequential: data.get("sequential") === "on",
  };
  const confidence = percentField(data, "confidence_level");
  if (confidence !== undefined) body.confidence_level = confidence;
  const minimum = (data.get("min_sample_size") || "").trim();
  if (minimum !== "") body.min_sample_size = Number(minimum);
  const lift = percentField(data, "min_relative_lift");
  const power = percentField(data, "power");
  if (power !== undefined) body.power = power;
  const forced = forcedBody();
  const metrics = metricsBody();
  const layer = data.get("layer").trim();
  if (editing) {
    // Every field is sent: the service changes (and audits) only those that differ.
    body.min_relative_lift = lift === undefined ? null : lift;
    body.layer = layer || null;
    body.forced_variants = forced;
    body.metrics = metrics;
    return { body };
  }
  if (lift !== undefined) body.min_relative_lift = lift;
  if (Object.keys(forced).length) body.forced_variants = forced;
  if (metrics.length) body.metrics = metrics;
  if (data.get("id").trim()) body.id = data.get("id").trim();
  if (layer) body.layer = layer;
  return { body };
}

async function submit(event) {
  event.preventDefault();
  clearErrors();
  const built = formBody(event.target);
  if (built.problem) {
    document.querySelector('.field-error[data-field="variants"]').textContent = built.problem;
    return;
  }
  try {
    const saved = editing
      ? await abscope.api("PATCH", `/experiments/${encodeURIComponent(editing.id)}`, built.body)
      : await abscope.api("POST", "/experiments", built.body);
    window.location.assign(`/view/${encodeURIComponent(saved.id)}`);
  } catch (e) {
    const detail = e.data && e.data.detail;
    if (!Array.isArray(detail)) {
      abscope.showError(document.getElementById("error"), e.message);
      return;
    }
    const unplaced = detail.map((d) => [d, humanMessage(d)]).filter(([d, text]) => !showFieldError(d.loc, text));
    if (unplaced.length) {
      abscope.showError(document.getElementById("error"), unplaced.map(([, text]) => text).join(" "));
    }
  }
}

// --- edit mode ------------------------------------------------------------------------

function fill(form, experiment) {
  const set = (name, value) => { form.elements[name].value = value; };
  set("name", experiment.name);
  set("id", experiment.id);
  form.elements.id.readOnly = true; // an id never changes
  form.elements.id.closest("label").firstChild.textContent = "Id ";
  set("description", experiment.description || "");
  set("traffic_percentage", String(experiment.traffic_percentage));
  set("metric_type", experiment.metric_type);
  set("allocation", experiment.allocation);
  set("layer", experiment.layer || FORM_DEFAULTS.layer);
  form.elements.sticky.checked = experiment.sticky;
  form.elements.sequential.checked = experiment.sequential;
  set("confidence_level", String(toPercent(experiment.confidence_level)));
  set("min_sample_size", String(experiment.min_sample_size));
  set("min_relative_lift", experiment.min_relative_lift === null
    ? FORM_DEFAULTS.min_relative_lift : String(toPercent(experiment.min_relative_lift)));
  set("power", String(toPercent(experiment.power)));
  const box = document.getElementById("variants");
  box.replaceChildren(...experiment.variants.map((v) => variantRow(Object.assign({}, v, {
    weight: Number((v.weight * 100).toFixed(2)), fraction: v.weight }))));
  variantRows().forEach((row, index) => { row.dataset.index = String(index); });
  syncRemoveButtons();
  document.getElementById("metrics").replaceChildren(...experiment.metrics.map(metricRow));
  renumberMetrics();
  document.getElementById("forced").replaceChildren(
    ...Object.entries(experiment.forced_variants).map(([user, variant]) => forcedRow(user, variant)));
  weightsEdited = false;
  showTotal();
}

async function loadDraft(form, experimentId) {
  document.getElementById("form-title").textContent = "Edit draft";
  document.getElementById("submit").textContent = "Save changes";
  const cancel = document.getElementById("cancel");
  cancel.href = `/view/${encodeURIComponent(experimentId)}`;
  cancel.classList.remove("hidden");
  form.classList.add("hidden");
  let experiment;
  try {
    experiment = await abscope.api("GET", `/experiments/${encodeURIComponent(experimentId)}`);
  } catch (e) {
    abscope.showError(document.getElementById("error"), e.status === 404
      ? `There is no experiment ${experimentId}.` : e.message);
    return;
  }
  editing = experiment;
  document.title = `Edit ${experiment.name} · abscope`;
  fill(form, experiment);
  form.classList.remove("hidden");
  if (experiment.status !== "draft") {
    const note = document.getElementById("edit-note");
    note.textContent = `${experiment.name} is ${experiment.status}: only drafts are edited here. ` +
      "Its traffic, weights and design change on its page.";
    note.classList.remove("hidden");
    for (const control of form.elements) control.disabled = true;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("create");
  const box = document.getElementById("variants");
  document.getElementById("add-variant").addEventListener("click", () => {
    box.append(variantRow({ name: `variant-${variantCount}`, model_id: "" }));
    variantsChanged();
  });
  const metrics = document.getElementById("metrics");
  document.getElementById("add-metric").addEventListener("click", () => {
    metrics.append(metricRow({ name: `metric-${metrics.children.length + 1}`, kind: "ratio", role: "guardrail" }));
    renumberMetrics();
  });
  document.getElementById("add-forced").addEventListener("click", () => {
    document.getElementById("forced").append(forcedRow("", null));
  });
  form.addEventListener("submit", submit);
  const match = window.location.pathname.match(/^\/edit\/([^/]+)$/);
  if (match) {
    loadDraft(form, decodeURIComponent(match[1]));
  } else {
    box.append(variantRow({ name: "control", model_id: "model-v1" }),
      variantRow({ name: "treatment", model_id: "model-v2" }));
    variantsChanged();
  }
});
