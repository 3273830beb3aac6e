// The deeper views under the stage fold to one line each (index.html's details.fold). A view that
// something else sends the user to opens by itself: a comparison run opens Compare, an edited-code
// run opens the code editor, and anything scrolled into view by a link or a starter pair opens
// the fold around it.

const FOLD_OF_RUN = { compare: "fold-compare", edited: "fold-code" };

/** Open every fold around `element` (a fold inside a fold too). */
export function unfold(element) {
  for (let fold = element?.closest("details"); fold; fold = fold.parentElement?.closest("details")) fold.open = true;
}

export function mountFolds(store) {
  store.addEventListener("run", ({ detail }) => {
    const fold = document.getElementById(FOLD_OF_RUN[detail.key]);
    if (fold) fold.open = true;
  });
}
