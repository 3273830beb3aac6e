// The offline copy of the app: the service worker (sw.js) keeps every app file in Cache Storage,
// so the page opens and generates with the server stopped (model files are kept by
// runtime/model_files.js after their checks).

export async function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  try {
    await navigator.serviceWorker.register("sw.js");
    if (!navigator.serviceWorker.controller) {
      // Route the worker's requests through the service worker from the first visit on.
      await new Promise((resolve) => {
        navigator.serviceWorker.addEventListener("controllerchange", resolve, { once: true });
        setTimeout(resolve, 5000);
      });
    }
  } catch (err) {
    console.warn(`offline support unavailable: ${err.message}`);
  }
}
