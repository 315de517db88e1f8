/**
 * FFI costs: SHA-256 and SM3 over 16 MiB through libvasp against `openssl speed -evp` on the
 * same machine in the same run; one trivial FFI call (`vasp_abi_version`); one quote of all 24
 * registers by the ASP and by a vASP instance.
 *
 *   deno run --allow-all bench/ffi_bench.ts [--seconds N] [--json]
 *
 * Figure to reach: hashing through FFI at ≥ 90% of OpenSSL's own rate (16384-byte column).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Asp, hash, type HashAlgName, native } from "../ffi/mod.ts";

/** One hash algorithm, through FFI and in `openssl speed`. */
export interface HashRow {
  readonly alg: HashAlgName;
  /** Bytes per second hashing 16 MiB per FFI call (median of the runs). */
  readonly ffiBytesPerSecond: number;
  /** Bytes per second `openssl speed -evp ALG -bytes 16384` reports. */
  readonly opensslBytesPerSecond: number;
  /** ffi / openssl; the target is ≥ 0.9. */
  readonly ratio: number;
}

const MIB16 = 16 << 20;
const TARGET = 0.9;

/**
 * Hashes a 16 MiB buffer through FFI for about `seconds`.
 *
 * @returns the median rate of the runs, bytes per second
 */
export function ffiHashRate(
  alg: HashAlgName,
  { data, seconds }: { data: Uint8Array<ArrayBuffer>; seconds: number },
): number {
  hash(alg, data);
  const rates: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end || rates.length < 3) {
    const t0 = performance.now();
    hash(alg, data);
    rates.push(data.byteLength / ((performance.now() - t0) / 1000));
  }
  return median(rates);
}

/**
 * Runs `openssl speed -mr -evp ALG -bytes 16384 -seconds N` and reads its rate.
 *
 * @returns bytes per second
 * @throws {Error} when openssl is missing or prints no rate for ALG
 */
export async function opensslRate(alg: HashAlgName, seconds: number): Promise<number> {
  const out = await new Deno.Command("openssl", {
    args: ["speed", "-mr", "-evp", alg, "-bytes", "16384", "-seconds", String(seconds)],
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  // Machine-readable result line: "+F:<n>:<alg>:<bytes/s for each size>"; one size here.
  const line = text.split("\n").find((l) => l.startsWith("+F:") && l.split(":")[2] === alg);
  const rate = Number(line?.split(":").at(-1));
  if (!out.success || !Number.isFinite(rate) || rate <= 0) {
    throw new Error(
      `openssl speed -evp ${alg} gave no rate (exit ${out.code}): ${text.slice(0, 200)}`,
    );
  }
  return rate;
}

/**
 * Nanoseconds per call of `vasp_abi_version()`, the cheapest crossing there is.
 *
 * @returns the median of several batches of one million calls
 */
export function trivialCallNs(): number {
  const fn = native().vasp_abi_version;
  const n = 1_000_000;
  const runs: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn();
    runs.push(((performance.now() - t0) * 1e6) / n);
  }
  return median(runs);
}

/**
 * Microseconds per quote of all 24 registers, by the ASP (AK) and by an instance.
 *
 * @returns median per quote for each signer
 */
export async function quoteMicros(count = 300): Promise<{ asp: number; instance: number }> {
  const dir = await Deno.makeTempDir({ prefix: "vasp-ffi-bench-" });
  try {
    using asp = Asp.open(dir);
    using inst = asp.createInstance("0f8fad5b-d9cb-469f-a165-70867728950e", new Uint8Array(32));
    const nonce = new Uint8Array(32);
    const time = (quote: () => unknown) => {
      for (let i = 0; i < 20; i++) quote();
      const samples: number[] = [];
      for (let i = 0; i < count; i++) {
        const t0 = performance.now();
        quote();
        samples.push((performance.now() - t0) * 1000);
      }
      return median(samples);
    };
    return { asp: time(() => asp.quote(nonce)), instance: time(() => inst.quote(nonce)) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

const rate = (bps: number) => `${(bps / 1e9).toFixed(3)} GB/s`;

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { seconds: { type: "string", default: "1" }, json: { type: "boolean" } },
  });
  const seconds = Number(values.seconds);
  const data = new Uint8Array(MIB16);
  for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
  const rows: HashRow[] = [];
  for (const alg of ["sha256", "sm3"] as const) {
    const ffi = ffiHashRate(alg, { data, seconds });
    const openssl = await opensslRate(alg, seconds);
    rows.push({
      alg,
      ffiBytesPerSecond: ffi,
      opensslBytesPerSecond: openssl,
      ratio: ffi / openssl,
    });
  }
  const callNs = trivialCallNs();
  const quote = await quoteMicros();
  if (values.json) {
    console.log(JSON.stringify({ hash: rows, trivialCallNs: callNs, quoteMicros: quote }, null, 2));
  } else {
    console.log("FFI bench (16 MiB per hash call; openssl speed -evp, 16384-byte blocks)");
    console.log("| what | through FFI | openssl speed | ratio | target ≥ 90% |");
    console.log("| --- | --- | --- | --- | --- |");
    for (const r of rows) {
      console.log(
        `| ${r.alg} | ${rate(r.ffiBytesPerSecond)} | ${rate(r.opensslBytesPerSecond)} | ` +
          `${(r.ratio * 100).toFixed(1)}% | ${r.ratio >= TARGET ? "met" : "NOT MET"} |`,
      );
    }
    console.log(`| trivial FFI call (vasp_abi_version) | ${callNs.toFixed(1)} ns | | | |`);
    console.log(`| quote, 24 registers, ASP (AK) | ${quote.asp.toFixed(1)} µs | | | |`);
    console.log(`| quote, 24 registers, vASP instance | ${quote.instance.toFixed(1)} µs | | | |`);
  }
}
