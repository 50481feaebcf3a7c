// The release as an OCI image, for the Kubernetes manifests: the same tree
// as the packages (/usr/bin/shoal, /usr/lib/shoal, /etc/shoal) on a root
// holding only what it runs: the shared libraries of the bundled Node and
// its native parts, and the few programs shoal and its scripts call (mount,
// umount, sh, the wrapper's readlink and dirname, mkdir, sleep), copied from
// this Debian 12 host.
// Written with umoci as an OCI layout, then tarred (`oci-archive:` for
// skopeo and podman).
import { execFileSync } from "node:child_process";
import { chmod, cp, mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

/** Programs the image carries besides shoal. */
const PROGRAMS = ["/usr/bin/sh", "/usr/bin/dash", "/usr/bin/readlink", "/usr/bin/dirname", "/usr/bin/mount", "/usr/bin/umount", "/usr/bin/mkdir", "/usr/bin/sleep"];

/** Build `out/shoal-VERSION-oci.tar` from the staged release tree `stage`; returns its path. */
export async function buildImage(stage: string, out: string, version: string): Promise<string> {
  const work = join(out, "image-build");
  await rm(work, { recursive: true, force: true });
  const rootfs = join(work, "rootfs");
  await mkdir(rootfs, { recursive: true });
  await cp(join(stage, "usr"), join(rootfs, "usr"), { recursive: true });
  await cp(join(stage, "etc"), join(rootfs, "etc"), { recursive: true });
  for (const d of ["usr/lib64", "usr/lib/x86_64-linux-gnu", "var/lib/shoal", "proc", "sys", "dev", "run", "root"]) await mkdir(join(rootfs, d), { recursive: true });
  for (const [link, to] of [["bin", "usr/bin"], ["lib", "usr/lib"], ["lib64", "usr/lib64"], ["sbin", "usr/bin"]]) execFileSync("ln", ["-s", to!, join(rootfs, link!)]);
  await mkdir(join(rootfs, "tmp"));
  await chmod(join(rootfs, "tmp"), 0o1777);
  await writeFile(join(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  await writeFile(join(rootfs, "etc/group"), "root:x:0:\n");

  const natives = execFileSync("find", [join(stage, "usr/lib/shoal/node_modules"), "-name", "*.node"], { encoding: "utf8" }).split("\n").filter((f) => f && !f.includes("musl"));
  const libs = new Set<string>();
  for (const bin of [...PROGRAMS, join(stage, "usr/lib/shoal/node"), ...natives]) {
    for (const line of execFileSync("ldd", [bin], { encoding: "utf8" }).split("\n")) {
      const m = /(?:=> )?(\/\S+) \(0x/.exec(line);
      if (m) libs.add(m[1]!);
    }
  }
  for (const p of PROGRAMS) await cp(p, join(rootfs, p), { dereference: true });
  // koffi opens libc by name; so does glibc's NSS: keep them where the loader looks
  for (const lib of libs) {
    const to = join(rootfs, lib.startsWith("/usr/") ? lib : `/usr${lib}`);
    await mkdir(dirname(to), { recursive: true });
    await cp(lib, to, { dereference: true });
  }
  execFileSync("ldconfig", ["-r", rootfs]);

  const layout = join(work, "layout");
  const umoci = (...args: string[]) => execFileSync("umoci", args, { stdio: ["ignore", "ignore", "inherit"] });
  umoci("init", "--layout", layout);
  umoci("new", "--image", `${layout}:${version}`);
  const bundle = join(work, "bundle");
  umoci("unpack", "--image", `${layout}:${version}`, bundle);
  await rm(join(bundle, "rootfs"), { recursive: true, force: true });
  execFileSync("mv", [rootfs, join(bundle, "rootfs")]);
  umoci("repack", "--image", `${layout}:${version}`, bundle);
  umoci("config", "--image", `${layout}:${version}`, "--config.entrypoint", "/usr/bin/shoal", "--config.cmd", "--help",
    "--config.env", "PATH=/usr/bin", "--config.workingdir", "/", "--architecture", "amd64", "--os", "linux",
    "--config.label", `org.opencontainers.image.version=${version}`, "--config.label", "org.opencontainers.image.title=shoal");
  umoci("gc", "--layout", layout);
  const archive = join(out, `shoal-${version}-oci.tar`);
  execFileSync("tar", ["-C", layout, "--owner=0", "--group=0", "--numeric-owner", "--sort=name", "-cf", archive, "."]);
  await rm(work, { recursive: true, force: true });
  return archive;
}
