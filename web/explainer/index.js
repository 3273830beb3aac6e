// The explainer: loaded after the page's first paint (app.js imports it dynamically) and mounted
// under the generator once the model is loaded. Each view is a module that
// draws from the run store (store.js) and follows the selected timestep.

import { mountArticle } from "./article.js";
import { mountAttention } from "./attention.js";
import { mountCodeEditor } from "./code_editor.js";
import { mountCompare } from "./compare.js";
import { drawClipLesson } from "./clip_lesson.js";
import { displayed } from "./displayed.js";
import { extendPanel, mountDetail } from "./detail.js";
import { mountExpand } from "./expand.js";
import { mountForward } from "./forward.js";
import { mountGeneralisation } from "./generalisation.js";
import { drawGuidanceGeometry } from "./guidance_geometry.js";
import { applyLinkSettings, mountLinks, readLink } from "./links.js";
import { mountOverview } from "./overview.js";
import { mountSave } from "./save.js";
import { mountStarters } from "./starters.js";
import { mountSweep } from "./sweep.js";
import { mountSkippedSteps } from "./skipped_steps.js";
import { mountTimeline } from "./timeline.js";
import { mountTour } from "./tour.js";

export { readLink }; // app.js: a link's own run replaces the first visit's

export function mountExplainer(store) {
  const $ = (id) => document.getElementById(id);
  extendPanel("refiner", drawGuidanceGeometry);
  extendPanel("text", drawClipLesson);
  const detail = mountDetail($("detail"), store);
  mountOverview($("overview"), store, (id) => detail.show(id));
  const expand = mountExpand($("overview"), $("detail"), store);
  mountTimeline($("timeline"), store);
  mountSkippedSteps($("timeline"), store);
  mountArticle($("article"), store);
  mountCompare($("compare-section"), store);
  mountSweep($("sweep-section"), store);
  mountSave($("save-controls"), store);
  mountAttention($("attention-final"), store);
  mountStarters($("starters"), store);
  mountLinks(store);
  mountGeneralisation($("generalisation"), $("starters"), store);
  const tour = mountTour($("tour-start"), store);
  // For tests and curious students: what each view shows right now, as plain arrays.
  window.sdlens.debug = { ...window.sdlens.debug, displayed, open: (id, options) => detail.show(id, options), close: () => detail.close(),
    panel: () => detail.open, store, expand, tour };
  mountCodeEditor($("code-section"), store); // (adds debug.code)
  window.sdlens.debug.forward = mountForward($("explainer"), store, window.sdlens);
  applyLinkSettings(); // a shared link reproduces its run
}
