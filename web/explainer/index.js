// The explainer: mounted under the generator once the page is ready. Each view is a module that
// draws from the run store (store.js) and follows the selected timestep.

import { mountArticle } from "./article.js";
import { mountAttention } from "./attention.js";
import { mountCodeEditor } from "./code_editor.js";
import { mountCompare } from "./compare.js";
import { displayed, mountDetail } from "./detail.js";
import { applyLinkSettings, mountLinks } from "./links.js";
import { mountOverview } from "./overview.js";
import { mountSave } from "./save.js";
import { mountStarters } from "./starters.js";
import { mountSweep } from "./sweep.js";
import { mountTimeline } from "./timeline.js";

export function mountExplainer(store) {
  const $ = (id) => document.getElementById(id);
  const detail = mountDetail($("detail"), store);
  mountOverview($("overview"), store, (id) => detail.show(id));
  mountTimeline($("timeline"), store);
  mountArticle($("article"), store);
  mountCompare($("compare-section"), store);
  mountSweep($("sweep-section"), store);
  mountSave($("save-controls"), store);
  mountAttention($("attention-final"), store);
  mountStarters($("starters"), store);
  mountLinks(store);
  // For tests and curious students: what each view shows right now, as plain arrays.
  window.sdlens.debug = { displayed, open: (id) => detail.show(id), close: () => detail.close(), store };
  mountCodeEditor($("code-section"), store); // (adds debug.code)
  applyLinkSettings(); // a shared link reproduces its run
}
