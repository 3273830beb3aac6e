// The model menu: the server's models (api/models.json), the Hub models opened in this browser
// before, and "Open a model from the Hub…" (hub_open.js); and which model a page opens first.

import { mountHubOpen, openedHubModels } from "./hub_open.js";
import { isHubModelId } from "./runtime/hub_id.js";

const $ = (id) => document.getElementById(id);

/**
 * Fill #model and mount #hub-open. `models` is the page's list (filled here, Hub models added as
 * they open), `load(id)` opens a model, `current()` is the open one's id, `lookUp(hub)` asks the
 * worker what a Hub repo is. Returns {openFirst(linked)}.
 */
export async function mountModelMenu({ models, load, current, lookUp, showError, openSettings }) {
  const select = $("model");
  models.push(...await (await fetch("api/models.json")).json());
  if (!models.length) throw new Error("no models on this server; export one with: python -m export convert …");
  const fromHub = document.createElement("optgroup");
  fromHub.label = "From the Hugging Face Hub";
  fromHub.append(new Option("Open a model from the Hub…", "hub:"));
  select.replaceChildren(...models.map((m) => new Option(m.name, m.id, m.default, m.default)), fromHub);
  const add = (model) => {
    if (models.some((m) => m.id === model.id)) return;
    models.push(model);
    fromHub.insertBefore(new Option(model.name, model.id), fromHub.lastChild);
  };
  openedHubModels().forEach(add);

  const hub = await (await fetch("api/hub.json")).json();
  const panel = mountHubOpen($("hub-open"), {
    hub,
    look: lookUp,
    open: (model) => {
      add(model);
      // The page's link names the commit, so that it opens these very files again.
      const link = new URL(location.href);
      link.searchParams.set("model", model.id);
      history.replaceState(history.state, "", link);
      return load(model.id);
    },
  });

  select.addEventListener("change", () => {
    const id = select.value;
    if (!isHubModelId(id)) return load(id).catch((err) => showError(err.message));
    select.value = current(); // until the Hub model is open (it may ask before downloading)
    if (id === "hub:") return panel.focus();
    panel.look(id).catch(() => {}); // (the panel says why not)
  });

  return {
    /** The model a link names (?model=), else the default. A Hub model is looked up first (it may
     * ask before a large download); where it cannot be opened, the panel says why and the default
     * model opens instead, so the page still works. */
    async openFirst(linked) {
      const local = models.find((m) => m.id === linked && !m.hub);
      if (isHubModelId(linked)) {
        openSettings();
        const opened = await panel.look(linked).then(() => true, (err) => showError(err.message));
        if (opened) return; // (else the link stays as it is: a reload resumes a broken download)
      }
      const fallback = models.find((m) => m.default);
      if (linked && !local && !isHubModelId(linked)) {
        showError(`This link's model "${linked}" is not on this server (it has ${models.filter((m) => !m.hub).map((m) => m.id).join(", ")}), ` +
          `so ${fallback.name} is open instead and the link's run was not made.`);
      }
      await load((local || fallback).id);
    },
  };
}
