// Create-experiment form: variant rows, and API validation errors beside their fields.
"use strict";

let variantCount = 0;

function variantRow(name, modelId, weight) {
  const i = variantCount++;
  const row = abscope.el("div", { class: "variant-row", "data-variant": i },
    abscope.el("label", {}, "Name", abscope.el("input", { name: "variant-name", value: name }),
      abscope.el("span", { class: "field-error", "data-variant-field": "name" })),
    abscope.el("label", {}, "Model id", abscope.el("input", { name: "variant-model", value: modelId }),
      abscope.el("span", { class: "field-error", "data-variant-field": "model_id" })),
    abscope.el("label", {}, "Weight", abscope.el("input", { name: "variant-weight", type: "number", step: "any", value: weight }),
      abscope.el("span", { class: "field-error", "data-variant-field": "weight" })),
    abscope.el("button", { type: "button", class: "secondary remove", text: "Remove",
      onclick: () => { row.remove(); renumber(); } }));
  return row;
}

function option(value, text, selected) {
  return abscope.el("option", { value, text, selected: selected ? true : null });
}

function metricRow(name, kind, role) {
  const field = (label, control, key) => abscope.el("label", {}, label, control,
    abscope.el("span", { class: "field-error", "data-metric-field": key }));
  const margin = abscope.el("input", { name: "metric-margin", type: "number", step: "any", min: "0", value: "5" });
  const action = abscope.el("select", { name: "metric-action" },
    option("pause", "pause: serve the control"), option("alert", "alert only"));
  const roleSelect = abscope.el("select", { name: "metric-role" },
    option("secondary", "secondary", role === "secondary"), option("guardrail", "guardrail", role === "guardrail"));
  const sync = () => {
    const guardrail = roleSelect.value === "guardrail";
    margin.disabled = action.disabled = !guardrail;
  };
  roleSelect.addEventListener("change", sync);
  const row = abscope.el("div", { class: "metric-row" },
    field("Name", abscope.el("input", { name: "metric-name", value: name }), "name"),
    field("Kind", abscope.el("select", { name: "metric-kind" },
      option("binary", "binary (converted)", kind === "binary"), option("mean", "mean per user", kind === "mean"),
      option("ratio", "ratio (per request)", kind === "ratio")), "kind"),
    field("Role", roleSelect, "role"),
    field("Better when", abscope.el("select", { name: "metric-direction" },
      option("lower", "lower"), option("higher", "higher")), "higher_is_better"),
    field("Margin %", margin, "margin"),
    field("On breach", action, "action"),
    abscope.el("button", { type: "button", class: "secondary remove", text: "Remove",
      onclick: () => { row.remove(); renumberMetrics(); } }));
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
    const metric = {
      name: value("metric-name").trim(),
      kind: value("metric-kind"),
      role: value("metric-role"),
      higher_is_better: value("metric-direction") === "higher",
    };
    if (metric.role === "guardrail") {
      metric.margin = Number(value("metric-margin")) / 100;
      metric.action = value("metric-action");
    }
    return metric;
  });
}

function renumber() {
  document.querySelectorAll("#variants .variant-row").forEach((row, index) => {
    row.dataset.index = String(index);
  });
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

function formBody(form) {
  const data = new FormData(form);
  const variants = [...document.querySelectorAll("#variants .variant-row")].map((row) => ({
    name: row.querySelector("[name=variant-name]").value.trim(),
    model_id: row.querySelector("[name=variant-model]").value.trim(),
    weight: Number(row.querySelector("[name=variant-weight]").value),
  }));
  const body = {
    name: data.get("name").trim(),
    description: data.get("description"),
    variants,
    traffic_percentage: Number(data.get("traffic_percentage")),
    metric_type: data.get("metric_type"),
    allocation: data.get("allocation"),
    sticky: data.get("sticky") === "on",
    sequential: data.get("sequential") === "on",
  };
  const metrics = metricsBody();
  if (metrics.length) body.metrics = metrics;
  const lift = (data.get("min_relative_lift") || "").trim();
  if (lift !== "") body.min_relative_lift = Number(lift) / 100;
  const power = (data.get("power") || "").trim();
  if (power !== "") body.power = Number(power) / 100;
  if (data.get("id").trim()) body.id = data.get("id").trim();
  if (data.get("layer").trim()) body.layer = data.get("layer").trim();
  return body;
}

async function submit(event) {
  event.preventDefault();
  clearErrors();
  try {
    const created = await abscope.api("POST", "/experiments", formBody(event.target));
    window.location.assign(`/view/${created.id}`);
  } catch (e) {
    const detail = e.data && e.data.detail;
    let placed = false;
    if (Array.isArray(detail)) {
      for (const d of detail) placed = showFieldError(d.loc, d.msg) || placed;
    }
    if (!placed) abscope.showError(document.getElementById("error"), e.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("variants");
  box.append(variantRow("control", "model-v1", "0.5"), variantRow("treatment", "model-v2", "0.5"));
  renumber();
  document.getElementById("add-variant").addEventListener("click", () => {
    box.append(variantRow(`variant-${variantCount}`, "", "0"));
    renumber();
  });
  const metrics = document.getElementById("metrics");
  document.getElementById("add-metric").addEventListener("click", () => {
    metrics.append(metricRow(`metric-${metrics.children.length + 1}`, "ratio", "guardrail"));
    renumberMetrics();
  });
  document.getElementById("create").addEventListener("submit", submit);
});
