import { describe, expect, it } from "vitest";
import { answeredRequests } from "../../src/fs/index.ts";

describe("answeredRequests", () => {
  it("counts every request the agent answered and none of the kernel's forget notices", () => {
    const ops = { lookup: 3, read: 5, forget: 7, batch_forget: 11, release: 2 };
    expect(answeredRequests({ ops, errors: {}, bytesRead: 0 })).toBe(10);
  });
});
