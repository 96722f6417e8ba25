// A draft's own actions, in #draft-actions of the detail page (/view/<id>: edit, delete)
// and of the edit form (/edit/<id>: delete). Deleting asks for confirmation first; the
// service deletes drafts only (a 409 otherwise, shown as it says).
"use strict";

const abscopeDraft = {
  id() {
    const match = window.location.pathname.match(/^\/(view|edit)\/([^/]+)$/);
    return match ? { page: match[1], id: decodeURIComponent(match[2]) } : null;
  },

  async show(box, where) {
    let experiment;
    try {
      experiment = await abscope.api("GET", `/experiments/${encodeURIComponent(where.id)}`);
    } catch (_) {
      box.replaceChildren(); // the page itself reports a missing experiment
      return;
    }
    if (experiment.status !== "draft") { box.replaceChildren(); return; }
    const message = abscope.el("p", { class: "field-error", role: "alert" });
    const confirm = abscope.el("div", { class: "draft-confirm hidden", role: "group",
      "aria-label": "Confirm deletion" },
      abscope.el("p", { text: `Delete the draft ${experiment.name} (${experiment.id}) for good? This cannot be undone.` }),
      abscope.el("div", { class: "row" },
        abscope.el("button", { type: "button", class: "danger", id: "draft-delete-confirm", text: "Delete draft",
          onclick: () => abscopeDraft.remove(experiment, message) }),
        abscope.el("button", { type: "button", class: "secondary", id: "draft-delete-cancel", text: "Keep it",
          onclick: () => { confirm.classList.add("hidden"); ask.disabled = false; ask.focus(); } })));
    const ask = abscope.el("button", { type: "button", class: "danger", id: "draft-delete", text: "Delete draft",
      onclick: () => { confirm.classList.remove("hidden"); ask.disabled = true;
        document.getElementById("draft-delete-cancel").focus(); } });
    const edit = where.page === "view"
      ? abscope.el("a", { class: "draft-edit-link", id: "draft-edit", href: `/edit/${encodeURIComponent(experiment.id)}`,
        text: "Edit draft" })
      : null;
    box.replaceChildren(abscope.el("div", { class: "panel draft-actions" },
      abscope.el("div", { class: "row centred" }, edit, ask,
        abscope.el("span", { class: "muted", text: "A draft can be changed in full or deleted until it starts." })),
      confirm, message));
  },

  async remove(experiment, message) {
    message.textContent = "";
    try {
      await abscope.api("DELETE", `/experiments/${encodeURIComponent(experiment.id)}`);
    } catch (e) {
      message.textContent = e.message;
      return;
    }
    window.location.assign("/");
  },
};

document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("draft-actions");
  const where = abscopeDraft.id();
  if (!box || !where) return;
  const status = document.getElementById("status");
  if (!status || where.page !== "view") { abscopeDraft.show(box, where); return; }
  // On the detail page, shown once its status is drawn, and again whenever it changes (a
  // started draft loses its actions).
  let last = status.textContent;
  if (last) abscopeDraft.show(box, where);
  new MutationObserver(() => {
    if (status.textContent !== last) { last = status.textContent; abscopeDraft.show(box, where); }
  }).observe(status, { childList: true, subtree: true, characterData: true });
});
