// The API reference at /api/docs: Swagger UI (static/vendor/swagger-ui) rendering the
// app's own OpenAPI document. A classic script: the vendored bundle defines a global.
"use strict";

(() => {
  const root = document.getElementById("api-docs");
  if (!root || typeof window.SwaggerUIBundle !== "function") return;
  window.SwaggerUIBundle({
    url: root.dataset.url,
    domNode: root,
    deepLinking: true,
    // "Try it out" sends the page's session cookie; the CSRF token goes in the
    // Authorize dialog (or use a Bearer token).
    withCredentials: true,
    // Its validator badge would send the document to a third-party service.
    validatorUrl: null,
  });
})();
