/* recruitmail: starts GraphiQL from the assets this service serves itself (no CDN).
 *
 * Configuration comes from data-* attributes of #graphiql (set by api/graphiql.py), so the
 * page needs no inline script and can run under a strict Content-Security-Policy.
 *
 * Queries and mutations go over HTTP POST with the headers typed into the "Headers" editor.
 * Subscriptions go over graphql-transport-ws (the graphql-ws client bundled in
 * graphiql.min.js); GraphiQL's createFetcher sends the same headers object as the
 * connection_init payload, e.g. {"Authorization": "Bearer …"}.
 */
(function () {
  "use strict";
  var root = document.getElementById("graphiql");
  var endpoint = root.getAttribute("data-endpoint") || "/graphql";
  var defaultHeaders = root.getAttribute("data-default-headers") || "";
  var defaultQuery = root.getAttribute("data-default-query") || "";

  var url = new URL(endpoint, window.location.href);
  url.hash = "";
  url.search = "";
  var wsUrl = new URL(url.href);
  wsUrl.protocol = url.protocol === "https:" ? "wss:" : "ws:";

  var fetcher = GraphiQL.createFetcher({
    url: url.href,
    subscriptionUrl: wsUrl.href,
    // Merged with (and overridden by) the headers editor's content for each subscription.
    wsConnectionParams: {},
  });

  var element = React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultQuery: defaultQuery,
    defaultHeaders: defaultHeaders,
    defaultEditorToolsVisibility: "headers",
    isHeadersEditorEnabled: true,
    // Tokens stay out of localStorage unless the user turns this on in GraphiQL's settings.
    shouldPersistHeaders: false,
    inputValueDeprecation: true,
  });
  root.textContent = "";
  ReactDOM.createRoot(root).render(element);
})();
