// Copy buttons: <button data-copy="#element-id">Copy</button> copies that element's text.
(function () {
  "use strict";

  function fallbackCopy(text) {
    // navigator.clipboard needs a secure context (https or localhost); plain
    // http on a LAN address does not have one, so fall back to a hidden textarea.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return fallbackCopy(text); });
    }
    return fallbackCopy(text);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.dataset.copy);
    if (!source) return;
    // The label may hold a visually hidden part that names what is copied: keep its markup.
    var label = button.dataset.label || button.innerHTML;
    button.dataset.label = label;
    var status = document.getElementById("copy-status");
    copy(source.textContent.trim()).then(function () {
      button.textContent = "Copied";
      if (status) status.textContent = "Copied to the clipboard.";
    }, function () {
      button.textContent = "Select and copy";
      if (status) status.textContent = "Copying was refused by the browser; select the text and copy it.";
    }).then(function () {
      setTimeout(function () { button.innerHTML = label; }, 2000);
    });
  });
})();
