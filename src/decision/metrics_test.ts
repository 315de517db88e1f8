import assert from "node:assert/strict";
import { Metrics } from "./metrics.ts";

const PROCESS = { residentBytes: 1024, openFds: 7, cpuSeconds: 1.5, startSeconds: 1700000000 };

Deno.test("Metrics.render() tells the build, the process and VMs by state, zeros included", () => {
  const metrics = new Metrics({ build: { version: "9.8.7", deno: "2.9.6", abi: "3" } });
  const text = metrics.render({
    policyRevision: "sha256:ab",
    vmsByState: { running: 2, quarantined: 1 },
    process: PROCESS,
  });
  assert.match(text, /^vasp_build_info\{version="9\.8\.7",deno="2\.9\.6",abi="3"\} 1$/m);
  assert.match(text, /^vasp_vms\{state="running"\} 2$/m);
  assert.match(text, /^vasp_vms\{state="quarantined"\} 1$/m);
  assert.match(text, /^vasp_vms\{state="paused"\} 0$/m);
  assert.match(text, /^process_resident_memory_bytes 1024$/m);
  assert.match(text, /^process_open_fds 7$/m);
  assert.match(text, /^# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1\.5$/m);
  assert.match(text, /^process_start_time_seconds 1700000000$/m);
  assert.ok(!text.includes("vasp_policy_last_reload"), "no load or reload yet: not reported");
});

Deno.test("Metrics.render() reports the last reload's result and time, a failure as 0", () => {
  const metrics = new Metrics();
  metrics.policyLoaded(new Date(1000_000));
  let text = metrics.render({ policyRevision: null, process: PROCESS });
  assert.match(text, /^vasp_policy_last_reload_success 1$/m);
  assert.match(text, /^vasp_policy_last_reload_timestamp_seconds 1000$/m);
  assert.ok(!text.includes('vasp_policy_reloads_total{result="ok"}'), "a first load is no reload");
  metrics.reload(false, new Date(2000_000));
  text = metrics.render({ policyRevision: null, process: PROCESS });
  assert.match(text, /^vasp_policy_last_reload_success 0$/m);
  assert.match(text, /^vasp_policy_last_reload_timestamp_seconds 2000$/m);
  assert.match(text, /^vasp_policy_reloads_total\{result="failed"\} 1$/m);
});

Deno.test("Metrics.render() reads the real process when given no facts", () => {
  const text = new Metrics().render({ policyRevision: null });
  const rss = Number(/^process_resident_memory_bytes (\d+)$/m.exec(text)?.[1]);
  assert.ok(rss > 1_000_000, `rss ${rss}`);
  assert.match(text, /^process_open_fds [1-9]\d*$/m);
});
