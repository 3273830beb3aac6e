// Offline support: a copy of every app file (page, scripts, runtime, Python sources) in Cache
// Storage, so the app opens and generates with the server stopped. The network comes first, so a
// running server always serves the current files. Model files are cached by the app itself, after
// their sha256 check (model_files.js), and are passed through here untouched.

const CACHE = "sdlens-app-v1";

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    const shell = await (await fetch("api/shell.json", { cache: "no-cache" })).json();
    await cache.addAll(shell);
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (request.headers.has("range") || /\/models\/.+\.(onnx|onnx_data)$/.test(url.pathname)) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const response = await fetch(request);
      if (response.ok) await cache.put(request, response.clone());
      return response;
    } catch (err) {
      const cached = await cache.match(request, { ignoreSearch: url.pathname === new URL("./", self.location).pathname });
      if (cached) return cached;
      throw err;
    }
  })());
});
