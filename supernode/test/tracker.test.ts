import { BadRequestError } from "@shoal/base";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { bitmapHas, chunkHolding, parsePeerReport, decodeChunkBitmap, encodeChunkBitmap, ownerOf, rankSupernodes, Tracker } from "../src/index.ts";
import { Cleanup } from "./harness.ts";

const L1 = `sha256:${"1".repeat(64)}`;
const L2 = `sha256:${"2".repeat(64)}`;

describe("Tracker", () => {
  it("returns live peers per layer and forgets them after the TTL unless re-announced", () => {
    let now = 1000;
    const t = new Tracker({ now: () => now }, { ttlMs: 100 });
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
});

describe("Tracker: chunk bitmaps", () => {
  it("encodes and decodes bitmaps, and rejects what is not one", () => {
    const text = encodeChunkBitmap(20, (i) => i % 3 === 0);
    const bits = decodeChunkBitmap(text);
    expect(Array.from({ length: 24 }, (_, i) => bitmapHas(bits, i))).toEqual(Array.from({ length: 24 }, (_, i) => i < 20 && i % 3 === 0));
    expect(bitmapHas(bits, -1)).toBe(false);
    for (const bad of ["***", "abc", "A".repeat(200_000)]) expect(() => decodeChunkBitmap(bad)).toThrow(BadRequestError);
    expect(chunkHolding(10, () => false)).toEqual({ held: 0 });
    expect(chunkHolding(10, () => true)).toEqual({ held: 10 });
    expect(chunkHolding(20, (i) => i % 3 === 0)).toEqual({ held: 7, bitmap: text });
  });

  it("answers, per chunk, only the peers that hold it; a layer announced without a bitmap counts as whole", () => {
    const t = new Tracker();
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

  it("answers at most 64 peers, a different sample each time", () => {
    const t = new Tracker();
    for (let i = 0; i < 200; i++) t.announce({ peerId: `p${i}`, addrs: ["x"], layers: [L1] });
    const a = t.peers(L1);
    const b = t.peers(L1);
    expect(a).toHaveLength(64);
    expect(new Set(a.map((p) => p.peerId)).size).toBe(64);
    expect(a.map((p) => p.peerId)).not.toEqual(b.map((p) => p.peerId));
  });
});

describe("Tracker: reports of peers that served bad chunks", () => {
  it("stops listing a peer reported by enough distinct peers, ignores its announces while banned, and lists it again after", () => {
    let now = 0;
    const t = new Tracker({ now: () => now }, { ttlMs: 10_000, reportsToBan: 2, banMs: 1000 });
    const chunk = `sha256:${"a".repeat(64)}`;
    t.announce({ peerId: "liar", addrs: ["x"], layers: [L1] });
    t.announce({ peerId: "honest", addrs: ["y"], layers: [L1] });
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

  it("refuses malformed reports", () => {
    const chunk = `sha256:${"a".repeat(64)}`;
    expect(parsePeerReport({ reporter: "a", peerId: "b", chunk })).toEqual({ reporter: "a", peerId: "b", chunk });
    for (const bad of [null, [], { reporter: "a", peerId: "a", chunk }, { reporter: "a", peerId: "b", chunk: "x" }, { reporter: "", peerId: "b", chunk }, { peerId: "b", chunk }]) {
      expect(() => parsePeerReport(bad), JSON.stringify(bad)).toThrow(BadRequestError);
    }
  });
});

describe("rendezvous hashing", () => {
  it("ranks every supernode, agrees with ownerOf, ignores order and trailing slashes, moves few keys", () => {
    const peers = ["http://a:1", "http://b:1", "http://c:1"];
    const keys = Array.from({ length: 300 }, (_, i) => `sha256:${i.toString(16).padStart(64, "0")}`);
    const counts = new Map<string, number>();
    for (const k of keys) {
      const r = rankSupernodes(k, peers);
      expect([...r].sort()).toEqual(peers);
      expect(ownerOf(k, peers)).toBe(r[0]);
      expect(ownerOf(k, [...peers].reverse().map((p) => `${p}/`))).toBe(r[0]);
      counts.set(r[0]!, (counts.get(r[0]!) ?? 0) + 1);
      // Removing a supernode only moves the keys it owned.
      const without = peers.filter((p) => p !== "http://c:1");
      if (r[0] !== "http://c:1") expect(ownerOf(k, without)).toBe(r[0]);
      else expect(ownerOf(k, without)).toBe(r[1]);
    }
    for (const p of peers) expect(counts.get(p)).toBeGreaterThan(60);
    expect(ownerOf(keys[0]!, [])).toBeUndefined();
  });
});

describe("tracker over HTTP", () => {
  const cleanup = new Cleanup();
  afterAll(() => cleanup.run());

  it("announce, peers, expiry, and 400 JSON errors for bad requests", async () => {
    const sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-t-"), trackerTtlMs: 1000 });
    const post = (body: string) => fetch(`${sn.url}/v1/announce`, { method: "POST", headers: { "content-type": "application/json" }, body });
    const peers = async (layer: string) => (await (await fetch(`${sn.url}/v1/peers?layer=${layer}`)).json()) as { peerId: string }[];
    expect((await post(JSON.stringify({ peerId: "a", addrs: ["x"], layers: [L1] }))).status).toBe(200);
    const res = await post(JSON.stringify({ peerId: "b", addrs: ["y"], layers: [L1, L2] }));
    expect(await res.json()).toEqual({ ttlMs: 1000 });
    expect((await peers(L1)).map((p) => p.peerId).sort()).toEqual(["a", "b"]);
    await sleep(500);
    await post(JSON.stringify({ peerId: "b", addrs: ["y"], layers: [L1, L2] }));
    await sleep(700);
    expect(await peers(L1)).toEqual([{ peerId: "b", addrs: ["y"] }]);

    for (const body of ["{", "[]", "null", JSON.stringify({ peerId: "", addrs: [], layers: [] }), JSON.stringify({ peerId: "c", addrs: "x", layers: [] }), JSON.stringify({ peerId: "c", addrs: [], layers: ["nope"] })]) {
      const r = await post(body);
      expect(r.status, body).toBe(400);
      expect(await r.json()).toMatchObject({ code: "SHOAL_ERR_BAD_REQUEST" });
    }
    const big = await post(JSON.stringify({ peerId: "c", addrs: [], layers: [], pad: "x".repeat(2 * 1024 * 1024) }));
    expect(big.status).toBe(400);
    // per-chunk answers and bitmap validation
    expect((await post(JSON.stringify({ peerId: "c", addrs: ["z"], layers: [L2], chunks: { [L2]: encodeChunkBitmap(8, (i) => i === 5) } }))).status).toBe(200);
    const holders = async (q: string) => ((await (await fetch(`${sn.url}/v1/peers?layer=${L2}${q}`)).json()) as { peerId: string }[]).map((p) => p.peerId).sort();
    expect(await holders("&chunk=5")).toEqual(["b", "c"]);
    expect(await holders("&chunk=4")).toEqual(["b"]);
    for (const chunks of [{ [L2]: "***" }, { [L1]: "AA==" }, [], "x"]) {
      const r = await post(JSON.stringify({ peerId: "d", addrs: [], layers: [L2], chunks }));
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

  it("serves Prometheus metrics on its own listener", async () => {
    const sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-m-"), metricsListen: { host: "127.0.0.1", port: 0 } });
    const text = await (await fetch(`${sn.metricsUrl}/metrics`)).text();
    for (const name of ["shoal_supernode_origin_bytes_total", "shoal_supernode_served_bytes_total", "shoal_supernode_cache_hits_total", "shoal_supernode_preheat_chunks_done"]) {
      expect(text).toContain(name);
    }
  });
});

describe("parse errors are BadRequestError", () => {
  it("has a stable code", () => {
    expect(new BadRequestError("x").code).toBe("SHOAL_ERR_BAD_REQUEST");
  });
});
