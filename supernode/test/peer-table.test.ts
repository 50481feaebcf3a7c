import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { bitmapHas, decodeChunkBitmap, encodeChunkBitmap, type TrackerSigner } from "@shoal/swarm";
import { sealForTest, testPeerIdentity } from "@shoal/swarm/testsuite";
import { PeerTable } from "../src/index.ts";
import { Cleanup } from "./harness.ts";

const L1 = `sha256:${"1".repeat(64)}`;
const L2 = `sha256:${"2".repeat(64)}`;

describe("PeerTable", () => {
  it("returns live peers per layer and forgets them after the TTL unless re-announced", () => {
    let now = 1000;
    const t = new PeerTable({ now: () => now }, { ttlMs: 100 });
    t.announce({ peerId: "a", addrs: ["/ip4/10.0.0.1/tcp/1"], layers: [L1] });
    t.announce({ peerId: "b", addrs: ["/ip4/10.0.0.2/tcp/1"], layers: [L1, L2] });
    expect(t.peers(L1).map((p) => p.peerId).sort()).toEqual(["a", "b"]);
    expect(t.peers(L2)).toEqual([{ peerId: "b", addrs: ["/ip4/10.0.0.2/tcp/1"] }]);
    now += 60;
    t.announce({ peerId: "b", addrs: ["/ip4/10.0.0.2/tcp/2"], layers: [L2] });
    now += 60;
    expect(t.peers(L1)).toEqual([]);
    expect(t.peers(L2)).toEqual([{ peerId: "b", addrs: ["/ip4/10.0.0.2/tcp/2"] }]);
    now += 100;
    expect(t.peers(L2)).toEqual([]);
    expect(t.size()).toBe(0);
  });

  it("keeps a layer's holders right as they come and go, one or many", () => {
    const t = new PeerTable();
    const ids = (l: string) => t.peers(l).map((p) => p.peerId).sort();
    for (const id of ["a", "b", "c"]) t.announce({ peerId: id, addrs: ["x"], layers: [L1] });
    expect(ids(L1)).toEqual(["a", "b", "c"]);
    t.announce({ peerId: "a", addrs: ["x"], layers: [L2] });
    t.announce({ peerId: "b", addrs: ["x"], layers: [L2] });
    expect(ids(L1)).toEqual(["c"]);
    expect(ids(L2)).toEqual(["a", "b"]);
    t.announce({ peerId: "c", addrs: ["x"], layers: [L2] });
    expect(ids(L1)).toEqual([]);
    expect(t.layerView().map((v) => [v.layer, v.peers])).toEqual([[L2, 3]]);
    t.announce({ peerId: "a", addrs: ["x"], layers: [L1] });
    expect(ids(L1)).toEqual(["a"]);
    expect(ids(L2)).toEqual(["b", "c"]);
  });
});

describe("PeerTable: chunk bitmaps", () => {
  it("answers, per chunk, only the peers that hold it; a layer announced without a bitmap counts as whole", () => {
    const t = new PeerTable();
    t.announce({ peerId: "even", addrs: ["x"], layers: [L1], chunks: { [L1]: encodeChunkBitmap(10, (i) => i % 2 === 0) } });
    t.announce({ peerId: "odd", addrs: ["y"], layers: [L1, L2], chunks: { [L1]: encodeChunkBitmap(10, (i) => i % 2 === 1) } });
    t.announce({ peerId: "whole", addrs: ["z"], layers: [L1] });
    expect(t.peers(L1, 4).map((p) => p.peerId).sort()).toEqual(["even", "whole"]);
    expect(t.peers(L1, 7).map((p) => p.peerId).sort()).toEqual(["odd", "whole"]);
    expect(t.peers(L1, 10).map((p) => p.peerId)).toEqual(["whole"]);
    expect(t.peers(L2, 3).map((p) => p.peerId)).toEqual(["odd"]);
    const all = t.peers(L1);
    expect(all).toHaveLength(3);
    const even = all.find((p) => p.peerId === "even")!;
    expect(bitmapHas(decodeChunkBitmap(even.chunks!), 8)).toBe(true);
    expect(all.find((p) => p.peerId === "whole")!.chunks).toBeUndefined();
    // a new announce replaces the old bitmap
    t.announce({ peerId: "even", addrs: ["x"], layers: [L1], chunks: { [L1]: encodeChunkBitmap(10, () => false) } });
    expect(t.peers(L1, 4).map((p) => p.peerId)).toEqual(["whole"]);
  });

  it("summarises, per layer, how many peers hold it and how much (the status page's tracker view)", () => {
    let now = 0;
    const t = new PeerTable({ now: () => now }, { ttlMs: 100 });
    t.announce({ peerId: "even", addrs: ["x"], layers: [L1], chunks: { [L1]: encodeChunkBitmap(10, (i) => i % 2 === 0) } });
    t.announce({ peerId: "three", addrs: ["y"], layers: [L1, L2], chunks: { [L1]: encodeChunkBitmap(10, (i) => i < 3) } });
    t.announce({ peerId: "whole", addrs: ["z"], layers: [L1] });
    expect(t.layerView()).toEqual([
      { layer: L1, peers: 3, whole: 1, chunksHeld: 8 },
      { layer: L2, peers: 1, whole: 1, chunksHeld: 0 },
    ]);
    expect(t.layerView(1)).toHaveLength(1);
    now += 60;
    t.announce({ peerId: "whole", addrs: ["z"], layers: [L1] });
    now += 60;
    expect(t.layerView()).toEqual([{ layer: L1, peers: 1, whole: 1, chunksHeld: 0 }]);
  });

  it("answers at most 64 peers, a different sample each time", () => {
    const t = new PeerTable();
    for (let i = 0; i < 200; i++) t.announce({ peerId: `p${i}`, addrs: ["x"], layers: [L1] });
    const a = t.peers(L1);
    const b = t.peers(L1);
    expect(a).toHaveLength(64);
    expect(new Set(a.map((p) => p.peerId)).size).toBe(64);
    expect(a.map((p) => p.peerId)).not.toEqual(b.map((p) => p.peerId));
  });
});

describe("PeerTable: a layer thousands of peers hold", () => {
  it("answers 64 distinct live peers sampled over all the holders, leaving out the expired", () => {
    let now = 0;
    const t = new PeerTable({ now: () => now }, { ttlMs: 1000 });
    for (let i = 0; i < 2000; i++) t.announce({ peerId: `old${i}`, addrs: ["x"], layers: [L1] });
    now = 600;
    for (let i = 0; i < 2000; i++) t.announce({ peerId: `new${i}`, addrs: ["x"], layers: [L1] });
    now = 1200; // the first 2,000 expired, not yet swept
    const seen = new Set<string>();
    for (let k = 0; k < 20; k++) {
      const a = t.peers(L1);
      expect(a).toHaveLength(64);
      expect(new Set(a.map((p) => p.peerId)).size).toBe(64);
      for (const p of a) {
        expect(p.peerId.startsWith("new")).toBe(true);
        seen.add(p.peerId);
      }
    }
    expect(seen.size).toBeGreaterThan(600); // samples from everywhere, not one stretch of the list
  });

  it("finds the one holder of a rare chunk among thousands that lack it", () => {
    const t = new PeerTable();
    for (let i = 0; i < 3000; i++) t.announce({ peerId: `p${i}`, addrs: ["x"], layers: [L1], chunks: { [L1]: encodeChunkBitmap(16, (c) => c === 0 || (i === 1234 && c === 9)) } });
    expect(t.peers(L1, 9).map((p) => p.peerId)).toEqual(["p1234"]);
    expect(t.peers(L1, 0)).toHaveLength(64);
  });
});

describe("PeerTable: reports of peers that served bad chunks", () => {
  it("stops listing a peer reported by enough distinct peers, ignores its announces while banned, and lists it again after", () => {
    let now = 0;
    const t = new PeerTable({ now: () => now }, { ttlMs: 10_000, reportsToBan: 2, banMs: 1000, reporterAgeMs: 0 });
    const chunk = `sha256:${"a".repeat(64)}`;
    t.announce({ peerId: "liar", addrs: ["x"], layers: [L1] });
    t.announce({ peerId: "honest", addrs: ["y"], layers: [L1] });
    for (const v of ["v1", "v2"]) t.announce({ peerId: v, addrs: ["z"], layers: [L2] });
    expect(t.report({ reporter: "v1", peerId: "liar", chunk })).toBe(false);
    expect(t.report({ reporter: "v1", peerId: "liar", chunk })).toBe(false); // the same reporter twice counts once
    expect(t.peers(L1).map((p) => p.peerId).sort()).toEqual(["honest", "liar"]);
    expect(t.report({ reporter: "v2", peerId: "liar", chunk })).toBe(true);
    expect(t.peers(L1).map((p) => p.peerId)).toEqual(["honest"]);
    t.announce({ peerId: "liar", addrs: ["x"], layers: [L1] });
    expect(t.peers(L1).map((p) => p.peerId)).toEqual(["honest"]);
    now += 1001;
    t.announce({ peerId: "liar", addrs: ["x"], layers: [L1] });
    expect(t.peers(L1).map((p) => p.peerId).sort()).toEqual(["honest", "liar"]);
  });

  it("takes reports only from peers that have announced long enough: two fresh keys cannot ban an honest peer", () => {
    let now = 0;
    const t = new PeerTable({ now: () => now }, { ttlMs: 600_000, reportsToBan: 2, reporterAgeMs: 60_000 });
    const chunk = `sha256:${"a".repeat(64)}`;
    t.announce({ peerId: "honest", addrs: ["y"], layers: [L1] });
    expect(t.report({ reporter: "stranger", peerId: "honest", chunk })).toBe("unknown-reporter");
    for (const k of ["fresh1", "fresh2"]) t.announce({ peerId: k, addrs: ["z"], layers: [L2] });
    expect(t.report({ reporter: "fresh1", peerId: "honest", chunk })).toBe("unknown-reporter");
    expect(t.report({ reporter: "fresh2", peerId: "honest", chunk })).toBe("unknown-reporter");
    expect(t.peers(L1).map((p) => p.peerId)).toEqual(["honest"]);
    // renewing an announce keeps a peer's first sight: once established, two of them ban
    now += 30_000;
    for (const k of ["fresh1", "fresh2"]) t.announce({ peerId: k, addrs: ["z"], layers: [L2] });
    now += 30_000;
    expect(t.report({ reporter: "fresh1", peerId: "honest", chunk })).toBe(false);
    expect(t.report({ reporter: "fresh2", peerId: "honest", chunk })).toBe(true);
  });

  it("a member's flood of reports about fake peers is bounded: rate-limited, and none is kept", () => {
    const t = new PeerTable({}, { reporterAgeMs: 0, reportsPerMinute: 30 });
    t.announce({ peerId: "flooder", addrs: ["z"], layers: [L1] });
    const answers = Array.from({ length: 20_000 }, (_, i) => t.report({ reporter: "flooder", peerId: `fake-${i}`, chunk: `sha256:${"a".repeat(64)}` }));
    expect(answers.filter((a) => a === false).length).toBe(30);
    expect(answers.filter((a) => a === "rate-limited").length).toBe(20_000 - 30);
    expect(t.stats()).toMatchObject({ reported: 0, banned: 0 });
  });
});


describe("tracker over HTTP", () => {
  const cleanup = new Cleanup();
  afterAll(() => cleanup.run());

  it("announce, peers, expiry, 400 JSON errors for bad requests and 413 for oversized ones", async () => {
    const psk = randomBytes(32);
    const sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-t-"), trackerTtlMs: 1000, trackerSwarmKey: psk });
    const [a, b, c, d] = [testPeerIdentity(), testPeerIdentity(), testPeerIdentity(), testPeerIdentity()];
    const post = (body: string) => fetch(`${sn.url}/v1/announce`, { method: "POST", headers: { "content-type": "application/json" }, body });
    const announce = async (who: TrackerSigner, fields: object) => post(JSON.stringify(await sealForTest("announce", { peerId: who.peerId, ...fields }, who, psk)));
    const peers = async (layer: string) => (await (await fetch(`${sn.url}/v1/peers?layer=${layer}`)).json()) as { peerId: string }[];
    expect((await announce(a, { addrs: ["x"], layers: [L1] })).status).toBe(200);
    const res = await announce(b, { addrs: ["y"], layers: [L1, L2] });
    expect(await res.json()).toEqual({ ttlMs: 1000, paceMs: 1000 });
    expect((await peers(L1)).map((p) => p.peerId).sort()).toEqual([a.peerId, b.peerId].sort());
    await sleep(500);
    await announce(b, { addrs: ["y"], layers: [L1, L2] });
    await sleep(700);
    expect(await peers(L1)).toEqual([{ peerId: b.peerId, addrs: ["y"] }]);

    for (const body of ["{", "[]", "null", JSON.stringify({ peerId: c.peerId, addrs: [], layers: [] })]) {
      const r = await post(body);
      expect(r.status, body).toBe(400);
      expect(await r.json()).toMatchObject({ code: "SHOAL_ERR_BAD_REQUEST" });
    }
    for (const fields of [{ addrs: "x", layers: [] }, { addrs: [], layers: ["nope"] }]) {
      const r = await announce(c, fields);
      expect(r.status, JSON.stringify(fields)).toBe(400);
      expect(await r.json()).toMatchObject({ code: "SHOAL_ERR_BAD_REQUEST" });
    }
    const big = await post(JSON.stringify({ peerId: c.peerId, addrs: [], layers: [], pad: "x".repeat(2 * 1024 * 1024) }));
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ code: "SHOAL_ERR_BODY_TOO_LARGE" });
    // per-chunk answers and bitmap validation
    expect((await announce(c, { addrs: ["z"], layers: [L2], chunks: { [L2]: encodeChunkBitmap(8, (i) => i === 5) } })).status).toBe(200);
    const holders = async (q: string) => ((await (await fetch(`${sn.url}/v1/peers?layer=${L2}${q}`)).json()) as { peerId: string }[]).map((p) => p.peerId).sort();
    expect(await holders("&chunk=5")).toEqual([b.peerId, c.peerId].sort());
    expect(await holders("&chunk=4")).toEqual([b.peerId]);
    for (const chunks of [{ [L2]: "***" }, { [L1]: "AA==" }, [], "x"]) {
      const r = await announce(d, { addrs: [], layers: [L2], chunks });
      expect(r.status, JSON.stringify(chunks)).toBe(400);
    }
    for (const q of ["", "?layer=", "?layer=sha256:xyz", `?layer=${L2}&chunk=-1`, `?layer=${L2}&chunk=x`]) {
      const r = await fetch(`${sn.url}/v1/peers${q}`);
      expect(r.status).toBe(400);
      expect(await r.json()).toMatchObject({ code: "SHOAL_ERR_BAD_REQUEST" });
    }
    const wrongMethod = await fetch(`${sn.url}/v1/announce`);
    expect(wrongMethod.status).toBe(404);
    expect((await fetch(`${sn.url}/v1/health`)).status).toBe(200);
  });

  it("takes announces and reports only from members of its swarm, each in its own name, never replayed", async () => {
    const psk = randomBytes(32);
    const sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-auth-"), trackerSwarmKey: psk, trackerReporterAgeMs: 0 });
    const post = async (path: string, body: unknown) => {
      const r = await fetch(`${sn.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      return { status: r.status, code: ((await r.json()) as { code?: string }).code };
    };
    const listed = async () => ((await (await fetch(`${sn.url}/v1/peers?layer=${L1}`)).json()) as { peerId: string }[]).map((p) => p.peerId);
    const member = testPeerIdentity();
    const outsider = testPeerIdentity();
    const refused = { status: 403, code: "SHOAL_ERR_NOT_SWARM_MEMBER" };
    // the attacks of the review: plain announces, and announces sealed with another swarm key
    expect(await post("/v1/announce", { peerId: outsider.peerId, addrs: ["x"], layers: [L1] })).toMatchObject({ status: 400 });
    expect(await post("/v1/announce", await sealForTest("announce", { peerId: outsider.peerId, addrs: ["x"], layers: [L1] }, outsider, randomBytes(32)))).toEqual(refused);
    // a member announcing in another's name
    expect(await post("/v1/announce", await sealForTest("announce", { peerId: outsider.peerId, addrs: ["x"], layers: [L1] }, { peerId: outsider.peerId, sign: member.sign }, psk))).toEqual(refused);
    expect(await listed()).toEqual([]);
    const first = await sealForTest("announce", { peerId: member.peerId, addrs: ["x"], layers: [L1] }, member, psk, Date.now() - 1000);
    expect((await post("/v1/announce", await sealForTest("announce", { peerId: member.peerId, addrs: ["y"], layers: [L1] }, member, psk))).status).toBe(200);
    // an older announce of the same peer, sent again by whoever saw it
    expect(await post("/v1/announce", first)).toEqual(refused);
    expect(await listed()).toEqual([member.peerId]);
    // reports: two reporters ban, but only members reporting in their own names count
    const liar = member.peerId;
    const chunk = `sha256:${"c".repeat(64)}`;
    const report = (who: TrackerSigner, key: Uint8Array, reporter = who.peerId) => sealForTest("report", { reporter, peerId: liar, chunk }, who, key);
    const [w1, w2] = [testPeerIdentity(), testPeerIdentity()];
    // a member that never announced: its reports do not count
    expect(await post("/v1/report", await report(w1, psk))).toEqual(refused);
    for (const w of [w1, w2]) expect((await post("/v1/announce", await sealForTest("announce", { peerId: w.peerId, addrs: ["w"], layers: [L2] }, w, psk))).status).toBe(200);
    expect(await post("/v1/report", await report(outsider, randomBytes(32)))).toEqual(refused);
    expect(await post("/v1/report", await report(w1, psk, w2.peerId))).toEqual(refused);
    expect(await post("/v1/report", await sealForTest("announce", { reporter: w1.peerId, peerId: liar, chunk }, w1, psk))).toEqual(refused);
    expect(await post("/v1/report", await report(w1, psk))).toMatchObject({ status: 200 });
    expect(await listed()).toEqual([liar]);
    expect(await post("/v1/report", await report(w2, psk))).toMatchObject({ status: 200 });
    expect(await listed()).toEqual([]);
  });

  it("a real tracker: fresh members cannot ban an honest peer; an established one flooding reports gets 429", async () => {
    const psk = randomBytes(32);
    const sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-flood-"), trackerSwarmKey: psk });
    const post = async (path: string, body: unknown) => {
      const r = await fetch(`${sn.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      return { status: r.status, code: ((await r.json()) as { code?: string }).code };
    };
    const [honest, f1, f2] = [testPeerIdentity(), testPeerIdentity(), testPeerIdentity()];
    for (const p of [honest, f1, f2]) expect((await post("/v1/announce", await sealForTest("announce", { peerId: p.peerId, addrs: ["a"], layers: [L1] }, p, psk))).status).toBe(200);
    const chunk = `sha256:${"c".repeat(64)}`;
    for (const f of [f1, f2]) expect(await post("/v1/report", await sealForTest("report", { reporter: f.peerId, peerId: honest.peerId, chunk }, f, psk))).toEqual({ status: 403, code: "SHOAL_ERR_NOT_SWARM_MEMBER" });
    const listed = ((await (await fetch(`${sn.url}/v1/peers?layer=${L1}`)).json()) as { peerId: string }[]).map((p) => p.peerId);
    expect(listed).toContain(honest.peerId);
    // an established member flooding reports about peers nobody announced: 30 a minute taken (none kept), the rest 429
    const quick = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-flood2-"), trackerSwarmKey: psk, trackerReporterAgeMs: 0 });
    const flooder = testPeerIdentity();
    await fetch(`${quick.url}/v1/announce`, { method: "POST", body: JSON.stringify(await sealForTest("announce", { peerId: flooder.peerId, addrs: ["a"], layers: [L1] }, flooder, psk)) });
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) {
      const fake = testPeerIdentity();
      const r = await fetch(`${quick.url}/v1/report`, { method: "POST", body: JSON.stringify(await sealForTest("report", { reporter: flooder.peerId, peerId: fake.peerId, chunk }, flooder, psk)) });
      statuses.push(r.status);
      await r.arrayBuffer();
    }
    expect(statuses.filter((c) => c === 200).length).toBe(30);
    expect(statuses.filter((c) => c === 429).length).toBe(10);
  });

  it("without a swarm key the tracker takes no announces", async () => {
    const sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-nokey-") });
    const me = testPeerIdentity();
    const r = await fetch(`${sn.url}/v1/announce`, { method: "POST", body: JSON.stringify(await sealForTest("announce", { peerId: me.peerId, addrs: [], layers: [L1] }, me, randomBytes(32))) });
    expect(r.status).toBe(403);
    expect(((await r.json()) as { code: string }).code).toBe("SHOAL_ERR_NOT_SWARM_MEMBER");
  });

  it("serves Prometheus metrics on its own listener", async () => {
    const sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-m-"), metricsListen: { host: "127.0.0.1", port: 0 } });
    const text = await (await fetch(`${sn.metricsUrl}/metrics`)).text();
    for (const name of ["shoal_supernode_origin_bytes_total", "shoal_supernode_served_bytes_total", "shoal_supernode_cache_hits_total", "shoal_supernode_preheat_chunks_done"]) {
      expect(text).toContain(name);
    }
  });

  it("tells how long it took to answer each request, by route (a closed set of labels)", async () => {
    const sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-rt-"), metricsListen: { host: "127.0.0.1", port: 0 } });
    await (await fetch(`${sn.url}/v1/peers?layer=${L1}`)).arrayBuffer();
    await (await fetch(`${sn.url}/v1/peers?layer=${L1}`)).arrayBuffer();
    await (await fetch(`${sn.url}/v1/no/such/route/${"x".repeat(40)}`)).arrayBuffer();
    const text = await (await fetch(`${sn.metricsUrl}/metrics`)).text();
    const count = (route: string) => Number(new RegExp(`^shoal_supernode_request_seconds_count\\{route="${route}"\\} (\\d+)$`, "m").exec(text)?.[1]);
    expect(count("peers")).toBe(2);
    expect(count("other")).toBe(1);
    expect(text).not.toContain("no/such/route");
  });
});

describe("PeerTable: bounds", () => {
  const layer = (i: number) => `sha256:${i.toString(16).padStart(64, "0")}`;

  it("keeps at most maxPeers, dropping the peers that announced longest ago", () => {
    const t = new PeerTable({}, { maxPeers: 3 });
    for (const id of ["a", "b", "c", "d", "e"]) t.announce({ peerId: id, addrs: [], layers: [L1] });
    expect(t.peers(L1).map((p) => p.peerId).sort()).toEqual(["c", "d", "e"]);
    expect(t.stats()).toMatchObject({ peers: 3, holdings: 3, evicted: 2 });
    // a renewed announce counts as new: "c" stays, "d" goes
    t.announce({ peerId: "c", addrs: [], layers: [L1] });
    t.announce({ peerId: "f", addrs: [], layers: [L1] });
    expect(t.peers(L1).map((p) => p.peerId).sort()).toEqual(["c", "e", "f"]);
  });

  it("bounds the holdings and the bitmap bytes over all peers", () => {
    const t = new PeerTable({}, { maxHoldings: 10, maxBitmapBytes: 4096 });
    t.announce({ peerId: "a", addrs: [], layers: Array.from({ length: 8 }, (_, i) => layer(i)) });
    t.announce({ peerId: "b", addrs: [], layers: Array.from({ length: 5 }, (_, i) => layer(100 + i)) });
    expect(t.stats()).toMatchObject({ peers: 1, holdings: 5 });
    const bits = encodeChunkBitmap(8 * 1500, () => true); // 1,500 bytes, 2,000 as text
    t.announce({ peerId: "c", addrs: [], layers: [L1], chunks: { [L1]: bits } });
    t.announce({ peerId: "d", addrs: [], layers: [L2], chunks: { [L2]: bits } });
    expect(t.stats().bitmapBytes).toBeLessThanOrEqual(4096);
    expect(t.peers(L2).map((p) => p.peerId)).toEqual(["d"]);
  });

  it("stays within its default bounds under 300 announces of 10,000 layers each", () => {
    const t = new PeerTable();
    const layers = Array.from({ length: 10_000 }, (_, i) => layer(i));
    for (let p = 0; p < 300; p++) t.announce({ peerId: `p${p}`, addrs: [], layers });
    const s = t.stats();
    expect(s.holdings).toBeLessThanOrEqual(500_000);
    expect(s.peers).toBe(50);
    expect(t.peers(layers[0]!).length).toBeGreaterThan(0);
  });
});
