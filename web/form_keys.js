// The form from the keyboard: Ctrl+Enter (Cmd+Enter on a Mac) generates from anywhere in it, the
// prompt box included, and focus stays where it was after a run. (Generate is disabled while it
// runs, which drops focus to the page; it comes back to where it was.)

export function keepFocusAndShortcut(form, generateButton) {
  form.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey) || event.altKey || event.shiftKey) return;
    event.preventDefault(); // no new line in the prompt
    if (!generateButton.disabled) form.requestSubmit(generateButton);
  });
  let focused = null;
  form.addEventListener("submit", () => {
    focused = document.activeElement;
    // Pressing Generate focuses it, and disabling it moves focus to the page: watch for its return.
    const back = () => {
      if (generateButton.disabled) return;
      observer.disconnect();
      const lost = !document.activeElement || document.activeElement === document.body;
      if (lost && focused?.isConnected) focused.focus({ preventScroll: true });
    };
    const observer = new MutationObserver(back);
    observer.observe(generateButton, { attributes: true, attributeFilter: ["disabled"] });
  });
}
