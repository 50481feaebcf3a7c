import { BadRequestError } from "@shoal/base";
import { describe, expect, it } from "vitest";
import { base64BitmapCount, base64BitmapHas, bitmapCount, bitmapHas, chunkHolding, decodeChunkBitmap, encodeChunkBitmap, ownerOf, parsePeerReport, rankSupernodes } from "../src/index.ts";

describe("chunk bitmaps", () => {
  it("reads a base64 bitmap in place as its decoded bits say, whatever its length and padding", () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let chunks = 0; chunks <= 70; chunks++) {
      for (const density of [0, 0.3, 0.9, 1]) {
        const text = encodeChunkBitmap(chunks, () => random() < density);
        const bits = decodeChunkBitmap(text);
        for (let i = -2; i < chunks + 20; i++) expect(base64BitmapHas(text, i), `${text} chunk ${i}`).toBe(bitmapHas(bits, i));
        expect(base64BitmapCount(text)).toBe(bitmapCount(bits));
      }
    }
  });

  it("encodes and decodes bitmaps, and rejects what is not one", () => {
    const text = encodeChunkBitmap(20, (i) => i % 3 === 0);
    const bits = decodeChunkBitmap(text);
    expect(Array.from({ length: 24 }, (_, i) => bitmapHas(bits, i))).toEqual(Array.from({ length: 24 }, (_, i) => i < 20 && i % 3 === 0));
    expect(bitmapHas(bits, -1)).toBe(false);
    expect(bitmapCount(bits)).toBe(7);
    for (const bad of ["***", "abc", "A".repeat(200_000)]) expect(() => decodeChunkBitmap(bad)).toThrow(BadRequestError);
    expect(chunkHolding(10, () => false)).toEqual({ held: 0 });
    expect(chunkHolding(10, () => true)).toEqual({ held: 10 });
    expect(chunkHolding(20, (i) => i % 3 === 0)).toEqual({ held: 7, bitmap: text });
  });

});

describe("messages", () => {
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

describe("parse errors are BadRequestError", () => {
  it("has a stable code", () => {
    expect(new BadRequestError("x").code).toBe("SHOAL_ERR_BAD_REQUEST");
  });
});
