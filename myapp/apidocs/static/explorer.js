// Starts Swagger UI on the OpenAPI document named by the page (no inline script,
// so the page works under a Content-Security-Policy without 'unsafe-inline').
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    tryItOutEnabled: false,
    // Tokens live in the page only; nothing is written to localStorage.
    persistAuthorization: false,
  });
});
