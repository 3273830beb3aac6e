// What the explainer's views have put on screen, recorded by each view beside its drawing so the
// tests can check that what is displayed is what was computed (`window.sdlens.debug.displayed`).
// It lives in its own module so that every view can write to it without importing another view.

export const displayed = {};
