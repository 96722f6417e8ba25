// Experiments list: one request (GET /summary) for every experiment's status, variants,
// users, the best treatment's lift with its interval, and flags; then search, sort and the
// status filter run here, kept in the URL (?q=&status=&sort=&dir=), restored on load and on
// back/forward. Every interval and badge comes from the experiment's inference mode (the
// confidence sequence when sequential, else the fixed-horizon CI) and says which it is, so
// the list agrees with the detail page and the decision. A table at desktop width, a card
// per experiment at phone width (both drawn from the same data; CSS shows one).
"use strict";

const STATUS_ORDER = ["draft", "running", "paused", "completed", "stopped"];
const TEXT_SORTS = new Set(["name", "status"]); // ascending first; numbers descending first
const NOT_STARTED = "a draft: not started, so there is nothing to analyse yet (not_started)";

const list = {
  experiments: null, // the summary's lines, in the service's order (by creation)
  state: { q: "", status: "", sort: "", dir: "" },
  searchPushed: false, // the first keystroke of a search adds a history entry, the rest replace it
};

function why(reason) {
  return reason === "not_started" ? NOT_STARTED : abscope.reasonText(reason);
}

function modeLabel(x) {
  const level = `${Math.round(x.confidence_level * 1000) / 10}%`;
  return x.inference === "sequential"
    ? { short: `CS ${level}`, long: `${level} confidence sequence (sequential: valid at every look)` }
    : { short: `CI ${level}`, long: `${level} confidence interval (fixed-horizon)` };
}

// --- the URL ---------------------------------------------------------------------------------

function readUrl() {
  const params = new URL(window.location).searchParams;
  const sort = params.get("sort") || "";
  const known = [...document.querySelectorAll("#sort-select option")].map((o) => o.value);
  list.state = {
    q: params.get("q") || "",
    status: STATUS_ORDER.includes(params.get("status")) ? params.get("status") : "",
    sort: known.includes(sort) ? sort : "",
    dir: params.get("dir") === "asc" || params.get("dir") === "desc" ? params.get("dir") : "",
  };
}

function writeUrl(push) {
  const url = new URL(window.location);
  for (const [name, value] of Object.entries(list.state)) {
    if (value) url.searchParams.set(name, value); else url.searchParams.delete(name);
  }
  if (url.href === window.location.href) return;
  if (push) history.pushState(null, "", url); else history.replaceState(null, "", url);
}

function showState() {
  document.getElementById("search").value = list.state.q;
  document.getElementById("status-filter").value = list.state.status;
  document.getElementById("sort-select").value = list.state.sort;
}

// --- filter and sort -------------------------------------------------------------------------

function direction() {
  const { sort, dir } = list.state;
  if (dir) return dir;
  return TEXT_SORTS.has(sort) ? "asc" : "desc";
}

function flagScore(x) {
  // The most alarming first when sorted descending: SRM, a guardrail breach, underpowered,
  // then a significant result; a guardrail shown within its margin counts least.
  return (x.srm ? 16 : 0) + (x.guardrails.length && x.guardrail_status === "failing" ? 8 : 0)
    + (x.underpowered ? 4 : 0) + (x.significant ? 2 : 0)
    + (x.guardrails.length && x.guardrail_status === "passing" ? 1 : 0);
}

function sortKey(x, sort) {
  switch (sort) {
    case "name": return x.name.toLocaleLowerCase("en");
    case "status": return STATUS_ORDER.indexOf(x.status);
    case "variants": return x.variants.length;
    case "users": return x.users;
    case "lift": return x.best ? x.best.relative_lift : null;
    case "interval": return x.best && x.best.interval ? x.best.interval[0] : null;
    case "flags": return flagScore(x);
    default: return null;
  }
}

function visible() {
  const { q, status, sort } = list.state;
  const needle = q.trim().toLocaleLowerCase("en");
  const shown = list.experiments.filter((x) => (!status || x.status === status)
    && (!needle || x.name.toLocaleLowerCase("en").includes(needle) || x.id.includes(needle)));
  if (!sort) return shown;
  const sign = direction() === "asc" ? 1 : -1;
  const order = new Map(list.experiments.map((x, i) => [x.id, i]));
  return shown.slice().sort((a, b) => {
    const ka = sortKey(a, sort), kb = sortKey(b, sort);
    // Undefined values (a draft's lift, a zero baseline's interval) go last either way.
    if (ka === null || kb === null) {
      if (ka !== kb) return ka === null ? 1 : -1;
    } else if (ka !== kb) {
      return sign * (typeof ka === "string" ? ka.localeCompare(kb, "en") : ka - kb);
    }
    return order.get(a.id) - order.get(b.id); // ties keep the service's order
  });
}

// --- drawing ---------------------------------------------------------------------------------

function flags(x) {
  const out = [];
  if (x.significant) out.push(abscope.badge("significant", "significant"));
  if (x.srm) out.push(abscope.badge("SRM", "srm"));
  if (x.underpowered) out.push(abscope.badge("underpowered", "underpowered"));
  if (x.guardrails.length && x.guardrail_status) {
    const text = { failing: "guardrail breach", passing: "guardrails hold",
      inconclusive: "guardrails pending" }[x.guardrail_status];
    const badge = abscope.badge(text, `list-guardrail-${x.guardrail_status}`);
    badge.setAttribute("data-guardrail", x.guardrail_status);
    badge.title = `Guardrails (${x.guardrails.join(", ")}): ${x.guardrail_status}`;
    out.push(badge);
  }
  return out;
}

// The best lift and its interval as [text, reason, attributes] pairs, for a cell or a card.
function figures(x) {
  const best = x.best;
  if (!best) {
    const reason = x.null_reasons.best || "undefined";
    return { lift: { value: null, reason }, interval: { value: null, reason } };
  }
  const mode = modeLabel(x);
  return {
    variant: best.variant,
    lift: { value: best.relative_lift, reason: best.relative_lift_reason,
      text: abscope.signedPct(best.relative_lift) },
    interval: { value: best.interval, reason: best.interval_reason, mode,
      text: best.interval ? abscope.range(best.interval[0], best.interval[1], abscope.signedPct) : "" },
  };
}

function undefinedCell(tag, reason, attrs = {}) {
  return abscope.el(tag, Object.assign({}, attrs, {
    text: abscope.undefinedText, title: why(reason), "data-reason": reason || "undefined",
  }));
}

function row(x) {
  const f = figures(x);
  const lift = f.lift.value === null
    ? undefinedCell("td", f.lift.reason, { class: "num list-lift" })
    : abscope.el("td", { class: "num list-lift", "data-variant": f.variant },
      abscope.el("span", { class: "list-variant", text: f.variant, title: f.variant }), ` ${f.lift.text}`);
  const interval = f.interval.value === null
    ? undefinedCell("td", f.interval.reason, { class: "list-interval" })
    : abscope.el("td", { class: "list-interval", text: f.interval.text, title: f.interval.mode.long,
      "data-basis": x.best.basis, "data-mode": f.interval.mode.short });
  return abscope.el("tr", { "data-id": x.id },
    abscope.el("td", { class: "list-col-name" },
      abscope.el("a", { class: "list-name", href: `/view/${x.id}`, text: x.name, title: x.name }),
      abscope.el("div", { class: "muted list-id", text: x.id })),
    abscope.el("td", {}, abscope.badge(x.status, x.status)),
    abscope.el("td", { class: "list-variants", text: x.variants.join(", ") }),
    abscope.el("td", { class: "num", text: abscope.int(x.users) }),
    lift,
    interval,
    abscope.el("td", { class: "list-flags" }, flags(x)));
}

function figure(label, value, extra = {}) {
  const dd = value.value === null
    ? undefinedCell("dd", value.reason, extra)
    : abscope.el("dd", Object.assign({}, extra, { text: value.text }));
  return abscope.el("div", { class: "list-figure" }, abscope.el("dt", { text: label }), dd);
}

function card(x) {
  const f = figures(x);
  const lift = Object.assign({}, f.lift);
  if (lift.value !== null) lift.text = `${f.variant} ${lift.text}`;
  const mode = f.interval.mode || modeLabel(x);
  return abscope.el("li", { class: "list-card", "data-id": x.id },
    abscope.el("div", { class: "list-card-head" },
      abscope.el("a", { class: "list-name", href: `/view/${x.id}`, text: x.name, title: x.name }),
      abscope.badge(x.status, x.status)),
    abscope.el("div", { class: "muted list-id", text: x.id }),
    abscope.el("dl", { class: "list-card-figures" },
      figure("Users", { value: x.users, text: abscope.int(x.users) }, { class: "list-users" }),
      figure("Best lift", lift, { class: "list-lift" }),
      figure(mode.short, f.interval, { class: "list-interval", title: f.interval.value === null ? undefined : mode.long,
        "data-basis": x.best ? x.best.basis : undefined })),
    abscope.el("div", { class: "list-flags" }, flags(x)));
}

function describeFilter() {
  const { q, status } = list.state;
  const parts = [];
  if (q.trim()) parts.push(`“${q.trim()}”`);
  if (status) parts.push(`status ${status}`);
  return parts.join(" with ");
}

function render() {
  if (list.experiments === null) return;
  const shown = visible();
  document.querySelector("#experiments tbody").replaceChildren(...shown.map(row));
  document.getElementById("cards").replaceChildren(...shown.map(card));
  const none = list.experiments.length === 0;
  document.getElementById("empty").classList.toggle("hidden", !none);
  document.getElementById("no-match").classList.toggle("hidden", none || shown.length > 0);
  document.getElementById("no-match-what").textContent = describeFilter();
  document.getElementById("experiments").classList.toggle("hidden", shown.length === 0);
  const total = list.experiments.length;
  document.getElementById("count").textContent = none ? ""
    : shown.length === total ? `${total} experiment${total === 1 ? "" : "s"}`
      : `${shown.length} of ${total} experiments`;
  const dir = direction();
  for (const th of document.querySelectorAll("#experiments th[data-sort]")) {
    if (th.dataset.sort === list.state.sort) th.setAttribute("aria-sort", dir === "asc" ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
  }
  const button = document.getElementById("sort-dir");
  button.textContent = dir === "asc" ? "ascending" : "descending";
  button.disabled = !list.state.sort;
}

function change(update, push = true) {
  Object.assign(list.state, update);
  if (push) list.searchPushed = false;
  writeUrl(push);
  render();
}

async function load() {
  const error = document.getElementById("error");
  try {
    const summary = await abscope.api("GET", "/summary");
    list.experiments = summary.experiments;
  } catch (e) {
    document.getElementById("count").textContent = "";
    abscope.showError(error, e.message);
    return;
  }
  render();
}

document.addEventListener("DOMContentLoaded", () => {
  readUrl();
  showState();
  writeUrl(false); // drop unknown values from the URL
  document.getElementById("search").addEventListener("input", (event) => {
    const push = !list.searchPushed;
    Object.assign(list.state, { q: event.target.value });
    writeUrl(push);
    list.searchPushed = true;
    render();
  });
  document.getElementById("status-filter").addEventListener("change",
    (event) => change({ status: event.target.value }));
  document.getElementById("sort-select").addEventListener("change",
    (event) => change({ sort: event.target.value, dir: "" }));
  document.getElementById("sort-dir").addEventListener("click",
    () => change({ dir: direction() === "asc" ? "desc" : "asc" }));
  for (const th of document.querySelectorAll("#experiments th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      const sort = th.dataset.sort;
      if (list.state.sort === sort) change({ dir: direction() === "asc" ? "desc" : "asc" });
      else change({ sort, dir: "" });
      showState();
    });
  }
  document.getElementById("clear-filters").addEventListener("click", () => {
    change({ q: "", status: "" });
    showState();
    document.getElementById("search").focus();
  });
  window.addEventListener("popstate", () => {
    readUrl();
    list.searchPushed = false;
    showState();
    render();
  });
  load();
});
