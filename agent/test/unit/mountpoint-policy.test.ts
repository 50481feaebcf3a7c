import { describe, expect, it } from "vitest";
import { checkMountpointPolicy, checkMountpointSyntax } from "../../src/daemon/mountpoint-policy.ts";

const refusal = (path: string, mounted: string[] = []) => {
  try {
    checkMountpointPolicy(path, { root: "/var/lib/shoal", mounted });
    return "allowed";
  } catch (e) {
    return (e as { code: string }).code;
  }
};

describe("mountpoint policy", () => {
  it("refuses system directories, the agent's root, above and inside it, and inside or above a shoal mount", () => {
    for (const p of ["/", "/etc", "/usr", "/usr/lib", "/var/lib", "/tmp", "/var/lib/shoal", "/var/lib/shoal/layers", "/var"]) expect([p, refusal(p)]).toEqual([p, "SHOAL_ERR_MOUNTPOINT_REFUSED"]);
    expect(refusal("/srv/app/bin", ["/srv/app"])).toBe("SHOAL_ERR_MOUNTPOINT_REFUSED");
    expect(refusal("/srv/apps", ["/srv/apps/one"])).toBe("SHOAL_ERR_MOUNTPOINT_REFUSED");
  });

  it("allows ordinary directories, also beside a mount whose name shares a prefix", () => {
    for (const p of ["/mnt", "/mnt/app", "/tmp/x", "/var/lib/shoal-other", "/etc/app/rootfs", "/srv/app2"]) expect([p, refusal(p, ["/srv/app"])]).toEqual([p, "allowed"]);
  });

  it("takes only absolute, clean paths", () => {
    expect(checkMountpointSyntax("/mnt/app")).toBe("/mnt/app");
    expect(checkMountpointSyntax("/mnt/app/")).toBe("/mnt/app");
    for (const p of ["mnt/app", "./mnt", "/mnt/../etc", "/mnt//app", "/mnt/./app", ""]) expect(() => checkMountpointSyntax(p)).toThrow(/SHOAL_ERR_INVALID_ARGUMENT|not an absolute|not a clean/);
  });
});
