// Where the guided tour's card goes: beside, below or above the element a stop points at,
// whichever has room, and never on top of it. Pure geometry (CSS pixels) plus one function that
// applies it, so the rule can be read, and checked, apart from the tour.

/** Whether two rectangles {top, bottom, left, right} overlap (touching edges do not). */
export const overlaps = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;

/**
 * How to scroll the page and where to put the card so that both the card and (the start of) the
 * target are on screen and the card does not cover the target.
 * target: {left, top, width, height}, top in page coordinates (top of the document = 0);
 * card: {width, height}; view: {width, height} (the viewport); pageHeight: the document's height.
 * Returns {scrollY, left, top, side, height?}: left/top the card's position in the viewport, and
 * a smaller height for the card where it fits only so; side "over" is the least bad place when
 * nothing fits at all (a target that fills the screen on a page that cannot scroll).
 */
export function placeCard({ target, card, view, pageHeight, gap = 12 }) {
  const maxScroll = Math.max(0, pageHeight - view.height);
  const scrollTo = (y) => Math.round(Math.min(Math.max(0, y), maxScroll));
  const clear = (scrollY, left, top) => {
    const t = { left: target.left, right: target.left + target.width, top: target.top - scrollY, bottom: target.top - scrollY + target.height };
    const c = { left, right: left + card.width, top, bottom: top + card.height };
    const cardOnScreen = top >= 0 && c.bottom <= view.height;
    const targetOnScreen = t.top < view.height - 24 && t.bottom > 24;
    return cardOnScreen && targetOnScreen && !overlaps(t, c);
  };

  // Beside: the target's column leaves room for the card (a wide screen, a narrow target).
  const rightRoom = view.width - (target.left + target.width) - 2 * gap;
  const leftRoom = target.left - 2 * gap;
  if (Math.max(rightRoom, leftRoom) >= card.width) {
    const scrollY = scrollTo(target.top - Math.max(gap, (view.height - target.height) / 2));
    const top = Math.min(Math.max(gap, target.top - scrollY), view.height - card.height - gap);
    const left = rightRoom >= leftRoom ? target.left + target.width + gap : target.left - gap - card.width;
    if (clear(scrollY, left, top)) return { scrollY, left, top, side: rightRoom >= leftRoom ? "right" : "left" };
  }

  // Below or above: the card keeps to the right edge (the whole width on a phone).
  const left = Math.max(gap, view.width - card.width - gap);
  const spare = view.height - target.height - card.height - 3 * gap; // room left when both fit
  const candidates = [];
  if (spare >= 0) {
    // The pair centred on the screen: target then card, or card then target.
    const below = scrollTo(target.top - gap - spare / 2);
    candidates.push({ scrollY: below, top: target.top - below + target.height + gap, side: "below" });
    const above = scrollTo(target.top - card.height - 2 * gap - spare / 2);
    candidates.push({ scrollY: above, top: target.top - above - gap - card.height, side: "above" });
  }
  // A target taller than the room: the card on top and the target's start just under it, or the
  // card at the bottom and the target's end just above it (near the end of the page).
  const under = scrollTo(target.top - card.height - 2 * gap);
  candidates.push({ scrollY: under, top: gap, side: "above" });
  const over = scrollTo(target.top + target.height - (view.height - card.height - 2 * gap));
  candidates.push({ scrollY: over, top: view.height - card.height - gap, side: "below" });
  for (const c of candidates) {
    if (clear(c.scrollY, left, c.top)) return { scrollY: c.scrollY, left, top: c.top, side: c.side };
  }
  // No room for the whole card (a short page, a large target): a shorter card, which scrolls
  // inside, in the larger gap above or below the target.
  let best = null;
  for (const scrollY of [under, over, scrollTo(target.top - (view.height - target.height) / 2)]) {
    const above = target.top - scrollY - 2 * gap;
    const below = view.height - (target.top - scrollY + target.height) - 2 * gap;
    const room = Math.max(above, below);
    if (!best || room > best.height) {
      best = { scrollY, left, top: above >= below ? gap : view.height - below - gap, side: above >= below ? "above" : "below", height: room };
    }
  }
  if (best.height >= 96) return best;
  return { scrollY: under, left, top: gap, side: "over" };
}

/** Scroll to `element` and put `card` (position: fixed) beside, below or above it. With
 * `scroll` false (the page was scrolled, by the learner or by content growing above), the card
 * keeps its side and follows the element where it now is. */
export function placeCardBy(card, element, { scroll = true } = {}) {
  const gap = 12;
  let side = card.dataset.side;
  if (scroll || !side) {
    card.style.maxHeight = ""; // measured at its own size, before any shrinking for a former stop
    const box = element.getBoundingClientRect();
    const size = card.getBoundingClientRect();
    const place = placeCard({
      target: { left: box.left, top: box.top + scrollY, width: box.width, height: box.height },
      card: { width: size.width, height: size.height },
      view: { width: document.documentElement.clientWidth, height: innerHeight },
      pageHeight: document.documentElement.scrollHeight,
      gap,
    });
    scrollTo({ top: place.scrollY, behavior: "instant" });
    card.style.maxHeight = place.height ? `${place.height}px` : "";
    side = place.side;
    card.dataset.side = side;
    card.dataset.left = place.left;
  }
  // Where the element is now (the scroll may have landed a pixel off, or been clamped), not
  // where the arithmetic put it.
  const box = element.getBoundingClientRect();
  const size = card.getBoundingClientRect();
  let left = Number(card.dataset.left);
  let top;
  if (side === "right" || side === "left") {
    left = side === "right" ? box.right + gap : box.left - gap - size.width;
    top = Math.min(Math.max(gap, box.top), innerHeight - size.height - gap);
  } else if (side === "below") {
    top = box.bottom + gap;
  } else if (side === "above") {
    top = box.top - gap - size.height;
  } else {
    top = gap;
  }
  top = Math.min(Math.max(0, top), Math.max(0, innerHeight - size.height));
  Object.assign(card.style, { left: `${left}px`, top: `${top}px`, right: "auto", bottom: "auto" });
}
