import { describe, expect, it } from "vitest";
import {
  AbortedError, ERROR_CODES, errnoNameOf, errorBody, grpcStatusOf, httpStatusOf, isErrorCode, ociErrorOf, ShoalError, toShoalError, type ErrorCode,
} from "../src/index.ts";

describe("the error set", () => {
  it("is closed: every code is SHOAL_ERR_*, has a kind and a summary, and nothing else is a code", () => {
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^SHOAL_ERR_[A-Z0-9_]+$/);
      expect(info.summary.length).toBeGreaterThan(10);
      expect(isErrorCode(code)).toBe(true);
    }
    expect(isErrorCode("SHOAL_ERR_NOT_LAZY")).toBe(false);
    expect(isErrorCode("toString")).toBe(false);
    expect(isErrorCode(undefined)).toBe(false);
  });

  it("translates codes through each edge's table, with per-code overrides", () => {
    const e = (code: ErrorCode) => new ShoalError(code, "x");
    expect(httpStatusOf(e("SHOAL_ERR_BAD_REQUEST"))).toBe(400);
    expect(httpStatusOf(e("SHOAL_ERR_REGISTRY_UNAUTHORIZED"))).toBe(401);
    expect(httpStatusOf(e("SHOAL_ERR_CHUNK_RANGE"))).toBe(416);
    expect(httpStatusOf(e("SHOAL_ERR_NOT_CONVERTED"))).toBe(422);
    expect(httpStatusOf(e("SHOAL_ERR_BAD_INDEX"))).toBe(502); // override of its kind's 422
    expect(httpStatusOf(e("SHOAL_ERR_SHUTTING_DOWN"))).toBe(503);
    expect(httpStatusOf(new Error("boom"))).toBe(500);
    expect(errnoNameOf(e("SHOAL_ERR_NOT_FOUND"))).toBe("ENOENT");
    expect(errnoNameOf(e("SHOAL_ERR_FETCH_FAILED"))).toBe("EIO");
    expect(errnoNameOf(new AbortedError("stop"))).toBe("EINTR");
    expect(errnoNameOf(new DOMException("gone", "AbortError"))).toBe("EINTR");
    expect(errnoNameOf(new DOMException("deadline", "TimeoutError"))).toBe("EIO"); // a deadline is not an interrupt
    expect(grpcStatusOf(e("SHOAL_ERR_ALREADY_MOUNTED"))).toEqual({ name: "ALREADY_EXISTS", code: 6 });
    expect(grpcStatusOf(e("SHOAL_ERR_FETCH_FAILED"))).toEqual({ name: "UNAVAILABLE", code: 14 });
    expect(ociErrorOf(e("SHOAL_ERR_REGISTRY_DENIED"))).toBe("DENIED");
  });

  it("answers remote callers with the code, and no detail of errors that are not shoal's", () => {
    expect(errorBody(new ShoalError("SHOAL_ERR_NOT_FOUND", "no /x"))).toEqual({ code: "SHOAL_ERR_NOT_FOUND", message: "no /x" });
    expect(errorBody(new Error("secret at /root/.docker/config.json"))).toEqual({ code: "SHOAL_ERR_INTERNAL", message: "internal error" });
    const wrapped = toShoalError(new TypeError("bug"));
    expect(wrapped.code).toBe("SHOAL_ERR_INTERNAL");
    expect(wrapped.cause).toBeInstanceOf(TypeError);
    const same = new ShoalError("SHOAL_ERR_BUSY", "busy");
    expect(toShoalError(same)).toBe(same);
    expect(same.name).toBe("ShoalError");
    expect(new AbortedError("x").name).toBe("AbortedError");
  });
});
