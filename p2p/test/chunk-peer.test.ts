import { InvalidArgumentError } from "@shoal/base";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  ChunkPeer,
  generateSwarmKey,
  MAX_CHUNKS_PER_PEER_REQUEST,
  PeerBusyError,
  PeerNotFoundError,
  PeerUnavailableError,
  SwarmKeyError,
} from "../src/index.ts";
import type { ChunkPeerInit, ChunkProvider } from "../src/index.ts";
import { digestOf, mapProvider, MISSING_DIGEST, randomChunk } from "./helpers.ts";

const KEY = generateSwarmKey();
const EMPTY: ChunkProvider = { readCompressed: async () => undefined };

describe("ChunkPeer", () => {
  const peers: ChunkPeer[] = [];
  const dirs: string[] = [];

  async function startPeer(provider: ChunkProvider, init: ChunkPeerInit = {}): Promise<ChunkPeer> {
    const peer = new ChunkPeer({ provider }, { swarmKey: KEY, ...init });
    peers.push(peer);
    await peer.start();
    return peer;
  }

  afterEach(async () => {
    await Promise.all(peers.splice(0).map((p) => p.stop()));
  });
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("two peers with the same key exchange chunks; a missing chunk is not found", async () => {
    const small = randomChunk(1000);
    const big = randomChunk(3 * 1024 * 1024 + 17);
    const empty = new Uint8Array(0);
    const server = await startPeer(mapProvider([small, big, empty]));
    const client = await startPeer(EMPTY);
    expect(server.addrs.every((a) => a.startsWith("/ip4/127.0.0.1/tcp/") && a.endsWith(`/p2p/${server.peerId}`))).toBe(true);
    const target = { peerId: server.peerId, addrs: server.addrs };
    const signal = AbortSignal.timeout(20_000);

    expect(await client.fetchChunk(target, digestOf(small), { signal })).toEqual(small);
    expect(await client.fetchChunk(target, digestOf(big), { signal })).toEqual(big);
    expect(await client.fetchChunk(target, digestOf(empty), { signal })).toEqual(empty);
    // Connection is reused: the client knows the peer now, even without addresses.
    expect(await client.fetchChunk({ peerId: server.peerId, addrs: [] }, digestOf(small), { signal })).toEqual(small);
    expect(client.connectedPeers()).toBe(1);
    expect(server.connectedPeers()).toBe(1);

    const err = await client.fetchChunk(target, MISSING_DIGEST, { signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerNotFoundError);
    expect(err).toMatchObject({ code: "SHOAL_ERR_PEER_NOT_FOUND", peerId: server.peerId, digest: MISSING_DIGEST });

    expect(server.stats()).toMatchObject({
      bytesUploaded: small.byteLength * 2 + big.byteLength,
      uploadsServed: 4,
      uploadsNotFound: 1,
      uploadsRefused: 0,
      uploadsActive: 0,
    });
    // per-peer traffic, as each side counts it (for the status page)
    const sent = small.byteLength * 2 + big.byteLength;
    expect(server.peerTraffic()).toEqual([expect.objectContaining({ peerId: client.peerId, bytesUp: sent, bytesDown: 0 })]);
    expect(client.peerTraffic()).toEqual([expect.objectContaining({ peerId: server.peerId, bytesUp: 0, bytesDown: sent })]);
    await expect(client.fetchChunk(target, "sha256:XYZ", { signal })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it("fetches a run of chunks in one request, missing ones as undefined, in order", async () => {
    const chunks = [randomChunk(5000), randomChunk(200 * 1024), randomChunk(1)];
    const server = await startPeer(mapProvider(chunks));
    const client = await startPeer(EMPTY);
    const target = { peerId: server.peerId, addrs: server.addrs };
    const signal = AbortSignal.timeout(20_000);
    const got = await client.fetchChunks(target, [digestOf(chunks[0]!), MISSING_DIGEST, digestOf(chunks[1]!), digestOf(chunks[2]!)], { signal });
    expect(got).toEqual([chunks[0], undefined, chunks[1], chunks[2]]);
    expect(server.stats()).toMatchObject({ uploadsServed: 3, uploadsNotFound: 1, uploadsActive: 0 });
    await expect(client.fetchChunks(target, [], { signal })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.fetchChunks(target, Array.from({ length: MAX_CHUNKS_PER_PEER_REQUEST + 1 }, () => MISSING_DIGEST), { signal })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.fetchChunks(target, [digestOf(chunks[0]!), "sha256:XYZ"], { signal })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it("a peer with a different swarm key or no key cannot fetch", async () => {
    const chunk = randomChunk(100);
    const server = await startPeer(mapProvider([chunk]));
    const target = { peerId: server.peerId, addrs: server.addrs };
    // A mismatched handshake either fails at once (reset / garbage frame) or stalls until the
    // handshake timeout; try each kind of outsider a few times to see both.
    for (let i = 0; i < 3; i++) {
      const outsiders = [
        await startPeer(EMPTY, { swarmKey: generateSwarmKey(), handshakeTimeoutMs: 1000 }),
        await startPeer(EMPTY, { swarmKey: undefined, insecureNoSwarmKey: true, handshakeTimeoutMs: 1000 }),
      ];
      for (const outsider of outsiders) {
        const t0 = performance.now();
        const err = await outsider.fetchChunk(target, digestOf(chunk), { signal: AbortSignal.timeout(10_000) }).catch((e: unknown) => e);
        const elapsed = performance.now() - t0;
        expect(err).toBeInstanceOf(PeerUnavailableError);
        expect((err as PeerUnavailableError).code).toBe("SHOAL_ERR_PEER_UNAVAILABLE");
        expect(elapsed).toBeLessThan(3000);
        expect(outsider.connectedPeers()).toBe(0);
      }
    }
    expect(server.connectedPeers()).toBe(0);
    expect(server.stats().uploadsServed).toBe(0);
    expect(() => new ChunkPeer({ provider: EMPTY })).toThrow(SwarmKeyError);
  });

  it("an unreachable peer is PeerUnavailableError", async () => {
    const gone = await startPeer(EMPTY);
    const target = { peerId: gone.peerId, addrs: gone.addrs };
    await gone.stop();
    const client = await startPeer(EMPTY);
    await expect(client.fetchChunk(target, MISSING_DIGEST, { signal: AbortSignal.timeout(5000) })).rejects.toBeInstanceOf(PeerUnavailableError);
  });

  it("the upload rate limit holds", async () => {
    const chunk = randomChunk(1024 * 1024);
    const server = await startPeer(mapProvider([chunk]), { uploadRate: 512 * 1024 });
    const client = await startPeer(EMPTY);
    const t0 = performance.now();
    const got = await client.fetchChunk({ peerId: server.peerId, addrs: server.addrs }, digestOf(chunk), { signal: AbortSignal.timeout(20_000) });
    const elapsed = performance.now() - t0;
    expect(got).toEqual(chunk);
    // 1 MiB at 512 KiB/s with a 64 KiB burst: >= 1.875 s.
    expect(elapsed).toBeGreaterThanOrEqual(1500);
    expect(elapsed).toBeLessThan(6000);
  });

  it("answers busy beyond maxUploads", async () => {
    const chunk = randomChunk(1000);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const base = mapProvider([chunk]);
    const slow: ChunkProvider = {
      async readCompressed(digest) {
        await gate;
        return base.readCompressed(digest);
      },
    };
    const server = await startPeer(slow, { maxUploads: 1 });
    const client = await startPeer(EMPTY);
    const target = { peerId: server.peerId, addrs: server.addrs };
    const signal = AbortSignal.timeout(10_000);
    const first = client.fetchChunk(target, digestOf(chunk), { signal });
    while (server.stats().uploadsActive < 1) await new Promise((r) => setTimeout(r, 10));
    const err = await client.fetchChunk(target, digestOf(chunk), { signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerBusyError);
    expect(err).toMatchObject({ code: "SHOAL_ERR_PEER_BUSY" });
    release();
    expect(await first).toEqual(chunk);
    expect(server.stats()).toMatchObject({ uploadsServed: 1, uploadsRefused: 1, uploadsActive: 0 });
  });

  it("returns whatever a lying peer sends; verifying is the caller's job", async () => {
    const wanted = randomChunk(5000);
    const garbage = randomChunk(5000);
    const liar = await startPeer({ readCompressed: async () => garbage });
    const client = await startPeer(EMPTY);
    const got = await client.fetchChunk({ peerId: liar.peerId, addrs: liar.addrs }, digestOf(wanted), { signal: AbortSignal.timeout(10_000) });
    expect(got).toEqual(garbage);
    expect(digestOf(got)).not.toBe(digestOf(wanted));
  });

  it("keeps its peer id across restarts with keyFile", async () => {
    const dir = await mkdtemp(join(tmpdir(), "shoal-p2p-"));
    dirs.push(dir);
    const keyFile = join(dir, "sub", "peer.key");
    const a = await startPeer(EMPTY, { keyFile });
    const id = a.peerId;
    await a.stop();
    const b = await startPeer(EMPTY, { keyFile });
    expect(b.peerId).toBe(id);
    const c = await startPeer(EMPTY);
    expect(c.peerId).not.toBe(id);
  });

  it("a caller abort that is not a timeout rejects with the abort reason", async () => {
    const chunk = randomChunk(256 * 1024);
    const server = await startPeer(mapProvider([chunk]), { uploadRate: 64 * 1024 });
    const client = await startPeer(EMPTY);
    const ac = new AbortController();
    const p = client.fetchChunk({ peerId: server.peerId, addrs: server.addrs }, digestOf(chunk), { signal: ac.signal });
    setTimeout(() => ac.abort(new Error("cancelled")), 300);
    await expect(p).rejects.toThrow("cancelled");
    // The server notices the reset and frees its upload slot.
    const deadline = Date.now() + 10_000;
    while (server.stats().uploadsActive > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(server.stats().uploadsActive).toBe(0);
  });
});
