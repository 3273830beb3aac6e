// web/explainer/tour_place.js: the guided tour's card goes beside, below or above the element a
// stop points at, never on it, at a projector's and a phone's size, for short and tall targets
// near the top, middle and end of a page. Run by tests/test_backend_rules.py: node --test tests/web/
import assert from "node:assert/strict";
import { test } from "node:test";

import { overlaps, placeCard } from "../../web/explainer/tour_place.js";
import { guidanceAdvice } from "../../web/messages.js";

const VIEWS = [{ width: 1280, height: 720 }, { width: 1280, height: 900 }, { width: 390, height: 844 }];

function check(view, target, pageHeight) {
  const card = { width: Math.min(480, view.width - 32), height: Math.round(view.height * 0.42) };
  const place = placeCard({ target, card, view, pageHeight });
  const t = { left: target.left, right: target.left + target.width, top: target.top - place.scrollY, bottom: target.top - place.scrollY + target.height };
  const c = { left: place.left, right: place.left + card.width, top: place.top, bottom: place.top + (place.height ?? card.height) };
  if (place.height !== undefined) assert.ok(place.height >= 96 && place.height < card.height);
  assert.notEqual(place.side, "over", JSON.stringify({ view, target }));
  assert.ok(!overlaps(t, c), JSON.stringify({ view, target, place }));
  assert.ok(c.top >= 0 && c.bottom <= view.height && c.left >= 0 && c.right <= view.width, JSON.stringify({ view, target, place }));
  assert.ok(t.top < view.height && t.bottom > 0, "the target is on screen");
  assert.ok(place.scrollY >= 0 && place.scrollY <= Math.max(0, pageHeight - view.height));
  return place;
}

test("the card never covers its target", () => {
  for (const view of VIEWS) {
    const full = view.width - 32;
    for (const pageHeight of [view.height, 3000, 6000]) {
      for (const height of [40, 200, 500, 1400]) {
        for (const top of [10, 300, pageHeight / 2, pageHeight - height - 10]) {
          if (top < 0 || top + height > pageHeight) continue;
          for (const [left, width] of [[16, full], [16, Math.min(400, full)], [view.width - 420, 400]]) {
            if (left < 0) continue;
            check(view, { left, top, width, height }, pageHeight);
          }
        }
      }
    }
  }
});

test("beside where there is room, below or above on a phone", () => {
  const wide = check({ width: 1280, height: 720 }, { left: 16, top: 100, width: 500, height: 300 }, 3000);
  assert.equal(wide.side, "right");
  const phone = check({ width: 390, height: 844 }, { left: 16, top: 1000, width: 358, height: 200 }, 3000);
  assert.ok(["below", "above"].includes(phone.side));
});

test("guidance: an invalid value is an error, never the g ≤ 1 advice", () => {
  for (const typed of ["-5", "abc", "", "NaN", "Infinity", "-0.5"]) {
    const { text, kind } = guidanceAdvice(typed);
    assert.equal(kind, "error", typed);
    assert.ok(text.startsWith("guidance must be a number, 0 or more (7.5 is usual)"), text);
    assert.ok(!text.includes("g ≤ 1") && !/\bnan\b|''/.test(text), text);
  }
  assert.equal(guidanceAdvice("0.5").kind, "warning");
  assert.equal(guidanceAdvice("7.5").kind, "");
  assert.equal(guidanceAdvice("45").kind, "warning");
});
