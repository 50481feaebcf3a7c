// Public surface of @shoal/service: what every shoal daemon shares.
export {
  resolveSettings, parseBool, parseList, parseListen, parsePositiveInt, parseString, type Setting, type SettingsOf,
} from "./settings.ts";
export { Lifecycle, Interval, type Component } from "./lifecycle.ts";
export { listenTcp, listenUnix, baseUrl, closeServer, errorAnswer, jsonAnswer, sendJson, sendError, readJson, type JsonAnswer, type ListenAddress } from "./http.ts";
export { MetricsServer } from "./metrics-server.ts";
export { statusPageHtml, STATUS_PAGE_DATA_PATH, type StatusPage } from "./status-page.ts";
export { RecentEvents, Sampler, type RecentEvent, type Sample } from "./recent.ts";
