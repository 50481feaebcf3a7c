// The agent's status page: draws GET /v1/page (see src/daemon/status-page.ts).
/* global shoal */
"use strict";
(() => {
  const { h, bytes, ago, bar, table, card, section, rateChart } = shoal;
  const num = (v, text) => [{ class: "num" }, text ?? String(v)];
  /** Prefetch bytes done at the previous poll, per image: the rate is the difference. */
  const previous = new Map();

  function prefetchRate(img, now) {
    const p = img.prefetch;
    if (!p) return 0;
    const before = previous.get(img.digest);
    previous.set(img.digest, { t: now, done: p.bytesDone });
    if (!before || now <= before.t) return 0;
    return Math.max(0, ((p.bytesDone - before.done) * 1000) / (now - before.t));
  }

  function prefetchCell(img, rate) {
    const p = img.prefetch;
    if (!p) return [{ "data-k": "prefetch" }, h("i", {}, "off")];
    const state = p.finished ? (p.inflated ? "done" : "done, inflating") : `${bytes(rate)}/s`;
    return bar(p.bytesDone, p.bytesTotal, `${bytes(p.bytesDone)} of ${bytes(p.bytesTotal)} · ${state}${p.failures > 0 ? ` · ${p.failures} failures` : ""}`,
      { "data-k": "prefetch", "data-done": p.chunksDone, "data-total": p.chunksTotal });
  }

  function render(d) {
    const s = d.sources;
    const remote = s.peer + s.supernode + s.origin;
    const cards = h("div", { class: "cards" },
      card("Images in use", String(d.images.length), `${d.mounts.length} mounts`, { "data-k": "images" }),
      card("Chunk store", bytes(d.store.bytes), `${d.store.chunks} chunks of ${bytes(d.store.capacityBytes)}`, { "data-k": "store", "data-v": d.store.bytes }),
      card("Fetched", bytes(remote), `${bytes(s.peer)} peers · ${bytes(s.supernode)} supernodes`, { "data-k": "fetched", "data-v": remote }),
      card("From origin", bytes(s.origin), remote > 0 ? `${((100 * s.origin) / remote).toFixed(1)}% of fetched bytes` : "nothing fetched yet", { "data-k": "origin", "data-v": s.origin }),
      d.swarm ? card("Peers", `${d.swarm.connected} connected`, `${d.swarm.peers.length} exchanged chunks`, { "data-k": "swarm" }) : null,
    );
    const images = table(["image", "layers", "chunks here", "prefetch"], d.images.map((img) => [
      [{ "data-k": "image", "data-digest": img.digest }, h("code", {}, img.image)],
      num(img.layers),
      bar(img.chunksLocal, img.chunksTotal, `${img.chunksLocal} / ${img.chunksTotal} chunks`, { "data-k": "image-chunks", "data-local": img.chunksLocal, "data-total": img.chunksTotal }),
      prefetchCell(img, prefetchRate(img, d.now)),
    ]), "no image in use");
    const chart = rateChart(d.history, [
      { key: "store", label: "store", color: "#2e7d32" },
      { key: "peer", label: "peers", color: "#8e24aa" },
      { key: "supernode", label: "supernodes", color: "#1f6feb" },
      { key: "origin", label: "origin", color: "#c62828" },
    ], 5 * 60_000, { "data-k": "chart" }, d.sources);
    const mounts = table(["mountpoint", "image", "since"], d.mounts.map((m) => [
      [{ "data-k": "mount" }, h("code", {}, m.mountpoint)], h("code", {}, m.image), ago(Date.parse(m.mountedAt)),
    ]), "no mounts");
    const kinds = Object.entries(d.snapshots);
    const snapshots = kinds.length === 0 ? h("p", { class: "empty" }, "no containerd snapshots")
      : h("div", { class: "cards" }, kinds.map(([k, n]) => card(`${k} snapshots`, String(n), undefined, { "data-k": "snapshots", "data-kind": k })));
    const peers = d.swarm ? table(["peer", num(0, "bytes up"), num(0, "bytes down"), "last"], d.swarm.peers.map((p) => [
      [{ "data-k": "peer", "data-peer": p.peerId }, h("code", {}, p.peerId)],
      [{ class: "num", "data-k": "peer-up", "data-v": p.bytesUp }, bytes(p.bytesUp)],
      [{ class: "num", "data-k": "peer-down", "data-v": p.bytesDown }, bytes(p.bytesDown)],
      ago(p.last),
    ]), "no chunks exchanged with peers yet") : h("p", { class: "empty" }, "the peer swarm is off (--swarm-key)");
    const errors = d.errors.length === 0 ? h("p", { class: "empty" }, "no errors")
      : h("ul", { class: "errors" }, d.errors.map((e) => h("li", { "data-k": "error" }, h("span", { class: "bad" }, ago(e.t)), " ", e.message, e.count > 1 ? ` (×${e.count})` : "")));
    return h("div", {},
      h("p", { class: "meta" }, [d.swarm ? `peer ${d.swarm.peerId}` : "no peer swarm", d.mirror ? `registry mirror ${d.mirror}` : null].filter(Boolean).join(" · ")),
      cards,
      section("Images", images),
      section("Chunk bytes by source, last 5 minutes", chart),
      section("Mounts", mounts),
      section("Snapshots", snapshots),
      section("Peers", peers),
      section("Recent errors", errors),
    );
  }

  shoal.start({ render });
})();
