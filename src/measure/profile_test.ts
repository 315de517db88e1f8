import assert from "node:assert/strict";
import { makeProfile, profileId, textParameters } from "./profile.ts";

const base = {
  kernel: "Linux version 6.1.0-56-cloud-amd64 (…) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2",
  buildId: "3b43fad5034874490492495d552c0af6a5fab235",
  qemu: "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)",
  cpu: "qemu64",
  smp: 1,
  cmdline: "console=ttyS0 quiet",
};

Deno.test("textParameters() keeps only words that change the text, sorted and unique", () => {
  assert.deepEqual(
    textParameters("console=ttyS0 spectre_v2=off nokaslr mitigations=off quiet nopti nopti"),
    ["mitigations=off", "nopti", "spectre_v2=off"],
  );
  assert.deepEqual(textParameters("spectre-v2=retpoline"), ["spectre-v2=retpoline"]);
  assert.deepEqual(textParameters(""), []);
});

Deno.test("profileId() ignores KASLR and console words but not mitigations", () => {
  const a = profileId(makeProfile(base));
  assert.match(a, /^[0-9a-f]{32}$/);
  assert.equal(profileId(makeProfile({ ...base, cmdline: "nokaslr console=tty0" })), a);
  assert.notEqual(profileId(makeProfile({ ...base, cmdline: "mitigations=off" })), a);
});

Deno.test("profileId() changes with each of kernel, build ID, QEMU, CPU model and vCPUs", () => {
  const a = profileId(makeProfile(base));
  const variants = [
    { kernel: `${base.kernel}x` },
    { buildId: null },
    { qemu: "8.0.0" },
    { cpu: "max" },
    { smp: 2 },
  ];
  const ids = variants.map((v) => profileId(makeProfile({ ...base, ...v })));
  assert.equal(new Set([a, ...ids]).size, variants.length + 1);
});

Deno.test("makeProfile() refuses empty facts and a bad vCPU count, naming the field", () => {
  assert.throws(() => makeProfile({ ...base, cpu: " " }), { name: "TypeError", message: /"cpu"/ });
  assert.throws(() => makeProfile({ ...base, smp: 0 }), { name: "RangeError", message: /0/ });
  assert.throws(() => makeProfile({ ...base, smp: 1.5 }), RangeError);
});
