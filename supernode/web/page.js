// The supernode's status page: draws GET /v1/page (see src/status-page.ts).
/* global shoal */
"use strict";
(() => {
  const { h, bytes, short, ago, bar, table, card, section, rateChart } = shoal;
  const num = (v, text) => [{ class: "num" }, text ?? String(v)];

  function render(d) {
    const t = d.totals;
    const lookups = t.hits + t.misses;
    const ratio = t.servedBytes > 0 ? t.originBytes / t.servedBytes : 0;
    const cards = h("div", { class: "cards" },
      card("Cache", bytes(d.store.bytes), `${d.store.chunks} chunks of ${bytes(d.store.capacityBytes)}`, { "data-k": "cache", "data-v": d.store.bytes }),
      card("Hit rate", lookups > 0 ? `${((100 * t.hits) / lookups).toFixed(1)}%` : "–", `${t.hits} hits, ${t.misses} misses`, { "data-k": "hit-rate" }),
      card("Origin egress", bytes(t.originBytes), "fetched from registries", { "data-k": "origin", "data-v": t.originBytes }),
      card("Served", bytes(t.servedBytes), "to agents and engines", { "data-k": "served", "data-v": t.servedBytes }),
      card("Origin per byte served", t.servedBytes > 0 ? ratio.toFixed(3) : "–", "lower is better at a peak", { "data-k": "ratio" }),
      d.swarm ? card("Swarm", `${d.swarm.connected} ${d.swarm.connected === 1 ? "peer" : "peers"}`, `${bytes(d.swarm.bytesUploaded)} uploaded over libp2p`, { "data-k": "swarm" }) : null,
    );
    const chart = rateChart(d.history, [
      { key: "origin", label: "from origin", color: "#c62828" },
      { key: "served", label: "served", color: "#1f6feb" },
    ], 5 * 60_000, { "data-k": "chart" });
    const jobs = table(["image", "state", "progress", "started"], d.preheat.map((j) => [
      [{ "data-k": "job-image" }, j.image ? h("code", {}, j.image) : h("i", {}, "image hidden (no access)")],
      [{ "data-k": "job-state", class: j.status.state === "failed" ? "bad" : j.status.state === "done" ? "ok" : "" }, j.status.error ? `failed: ${j.status.error.code}` : j.status.state],
      bar(j.status.chunksDone, j.status.chunksTotal, `${j.status.chunksDone} / ${j.status.chunksTotal} chunks · ${bytes(j.status.bytesDone)} of ${bytes(j.status.bytesTotal)}`, { "data-k": "job-progress", "data-done": j.status.chunksDone, "data-total": j.status.chunksTotal }),
      ago(j.started),
    ]), "no preheat jobs");
    const tracker = table(["layer", "image", num(0, "agents"), num(0, "whole"), num(0, "chunks held (partial holders)")], d.tracker.layers.map((l) => [
      [{ "data-k": "layer", "data-layer": l.layer }, h("code", {}, short(l.layer))],
      l.images.length > 0 ? l.images.join(", ") : "–",
      [{ class: "num", "data-k": "layer-agents" }, String(l.peers)],
      num(l.whole),
      num(l.chunksHeld),
    ]), "no agent has announced a layer");
    const peers = table(["supernode", "health", num(0, "latency"), "checked"], d.supernodes.map((p) => [
      h("code", {}, p.url),
      [{ class: p.ok ? "ok" : "bad", "data-k": "supernode-health" }, p.ok ? "healthy" : p.checked === 0 ? "not checked yet" : `down: ${p.error ?? "?"}`],
      num(0, p.latencyMs !== undefined ? `${p.latencyMs} ms` : "–"),
      p.checked > 0 ? ago(p.checked) : "–",
    ]), "no other supernodes configured (--supernodes)");
    return h("div", {},
      h("p", { class: "meta" }, `supernode ${d.url}${d.swarm ? ` · peer ${d.swarm.peerId}` : ""}`),
      cards,
      section("Bytes over the last 5 minutes", chart),
      section("Preheat jobs", jobs),
      section(`Tracker: ${d.tracker.peers} agents, ${d.tracker.holdings} layer holdings`, tracker),
      section("Other supernodes", peers),
    );
  }

  shoal.start({ render });
})();
