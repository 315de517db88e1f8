/**
 * A real Debian userspace with systemd as PID 1 boots on the guest kernel, and a test can run
 * commands in it as root: flip sysctls, load and remove a kernel module, switch the function
 * tracer on and off. The fixture the measuring tests use to change a live kernel.
 */
import assert from "node:assert/strict";
import { bootDebianGuest, type DebianGuest } from "./fixtures/debian_guest.ts";

/** Runs a command that must succeed, and returns its output. */
async function run(guest: DebianGuest, command: string): Promise<string> {
  const { code, output } = await guest.exec(command);
  assert.equal(code, 0, `${command} exited ${code}: ${output}`);
  return output;
}

Deno.test("a Debian guest boots systemd to multi-user.target and runs root commands that change its kernel", async (t) => {
  await using guest = await bootDebianGuest();
  console.log(`Debian guest booted in ${guest.bootMs.toFixed(0)} ms`);

  await t.step("systemd is PID 1 and has finished starting, with no failed unit", async () => {
    assert.equal((await run(guest, "cat /proc/1/comm")).trim(), "systemd");
    assert.equal((await run(guest, "systemctl is-active multi-user.target")).trim(), "active");
    const failed = await run(guest, "systemctl --failed --no-legend");
    assert.equal(guest.systemState, "running", failed);
    assert.equal((await run(guest, "id -u")).trim(), "0");
    // The facts a measurer needs, read from the guest's own /proc.
    assert.ok(guest.kallsyms.has("_text") && guest.kallsyms.has("sys_call_table"));
    assert.equal(typeof guest.kernelCodePhys, "bigint");
  });

  await t.step("exec() keeps exit codes, frames any output and serialises calls", async () => {
    const tricky = "VASP-END 0 0\nVASP-BEGIN x\n\r\u00e9\t";
    const answer = await guest.exec(`printf '${tricky}'; echo err >&2; exit 3`);
    assert.deepEqual(answer, { code: 3, output: `${tricky}err\n` });
    const many = await Promise.all([1, 2, 3].map((i) => guest.exec(`sleep 0.$i; echo ${i}`)));
    assert.deepEqual(many.map((r) => r.output), ["1\n", "2\n", "3\n"]);
  });

  await t.step("exec() times out with a clear error and the channel recovers", async () => {
    await assert.rejects(
      guest.exec("sleep 3; echo late", { timeoutMs: 500 }),
      /Cannot run "sleep 3; echo late" in the Debian guest: it did not finish within 500 ms/,
    );
    assert.equal(await run(guest, "echo next"), "next\n");
  });

  await t.step("sysctl kernel.sched_schedstats goes to 1 and back to 0", async () => {
    const path = "/proc/sys/kernel/sched_schedstats";
    await run(guest, "sysctl -w kernel.sched_schedstats=1");
    assert.equal((await run(guest, `cat ${path}`)).trim(), "1");
    await run(guest, "sysctl -w kernel.sched_schedstats=0");
    assert.equal((await run(guest, `cat ${path}`)).trim(), "0");
  });

  await t.step("modprobe loads the dummy module and rmmod removes it", async () => {
    const loaded = async () => /^dummy\s/m.test(await run(guest, "lsmod"));
    assert.equal(await loaded(), false);
    await run(guest, "modprobe dummy");
    assert.equal(await loaded(), true);
    await run(guest, "rmmod dummy");
    assert.equal(await loaded(), false);
  });

  await t.step("the function tracer turns on and off", async () => {
    const dir = "/sys/kernel/tracing";
    await run(guest, `mountpoint -q ${dir} || mount -t tracefs nodev ${dir}`);
    await run(guest, `echo function > ${dir}/current_tracer`);
    assert.equal((await run(guest, `cat ${dir}/current_tracer`)).trim(), "function");
    await run(guest, `echo nop > ${dir}/current_tracer`);
    assert.equal((await run(guest, `cat ${dir}/current_tracer`)).trim(), "nop");
  });

  await t.step("closing kills QEMU and removes the RAM file", async () => {
    await guest.close();
    await assert.rejects(Deno.stat(guest.ramPath), Deno.errors.NotFound);
    await assert.rejects(guest.exec("true"), /Cannot run "true" in the Debian guest/);
  });
});
