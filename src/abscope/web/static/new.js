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
  document.getElementById("create").addEventListener("submit", submit);
});
