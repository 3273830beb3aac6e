// One line on what this page's context lacks, and what fixes it; empty when nothing is missing.
//
// Plain http from another machine is not a secure context: no WebGPU, no Cache Storage or
// service worker (so no offline copy), no threads. A static host without COOP/COEP headers is
// secure but not cross-origin isolated: WASM then runs on one thread.

export function contextNote() {
  if (!self.isSecureContext) {
    return "Plain http: no WebGPU, no offline copy and one thread, so this runs slowly on WASM. " +
      "The https:// address that python serve.py --lan prints gives all three.";
  }
  if (!self.crossOriginIsolated) {
    return "This host sends no cross-origin isolation headers (COOP/COEP), so WASM runs on one thread.";
  }
  return "";
}
