import assert from "node:assert/strict";
import { closeFd, NativeError, UnixSocket } from "../ffi/mod.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const openFds = () => [...Deno.readDirSync("/proc/self/fd")].length;

async function pair(dir: string, name = "s") {
  const listener = UnixSocket.listen(`${dir}/${name}.sock`);
  const accepted = listener.accept();
  const client = UnixSocket.connect(`${dir}/${name}.sock`);
  const server = (await accepted)!;
  return { listener, client, server };
}

Deno.test("UnixSocket passes bytes with the descriptors sent beside them, both ways", async () => {
  const dir = await Deno.makeTempDir();
  const before = openFds();
  const { listener, client, server } = await pair(dir);
  using file = await Deno.open(`${dir}/f`, { create: true, write: true });
  await file.write(enc("a"));
  // The descriptor Deno holds for the file.
  const target = Deno.realPathSync(`${dir}/f`);
  const fd = [...Deno.readDirSync("/proc/self/fd")].map((e) => Number(e.name))
    .find((n) => {
      try {
        return Deno.readLinkSync(`/proc/self/fd/${n}`) === target;
      } catch {
        return false;
      }
    })!;
  await client.send(enc('{"execute":"getfd","arguments":{"fdname":"f"}}'), [fd]);
  const got = await server.recv();
  assert.equal(
    new TextDecoder().decode(got.bytes),
    '{"execute":"getfd","arguments":{"fdname":"f"}}',
  );
  assert.equal(got.fds.length, 1);
  assert.notEqual(got.fds[0], fd);
  await server.send(enc("ok\n"), got.fds);
  closeFd(got.fds[0]!);
  const back = await client.recv();
  assert.equal(new TextDecoder().decode(back.bytes), "ok\n");
  assert.equal(back.fds.length, 1);
  // The descriptor that made the round trip writes to the same file.
  const link = Deno.readLinkSync(`/proc/self/fd/${back.fds[0]}`);
  assert.equal(link, Deno.realPathSync(`${dir}/f`));
  closeFd(back.fds[0]!);
  file.close();
  client.close();
  assert.equal((await server.recv()).bytes.length, 0, "the end of the stream reads as no bytes");
  server.close();
  listener.close();
  assert.equal(openFds(), before, "no descriptor leaks");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("UnixSocket.close() wakes a pending accept and receive and frees the handle after", async () => {
  const dir = await Deno.makeTempDir();
  const { listener, client, server } = await pair(dir);
  const receiving = server.recv();
  const accepting = listener.accept();
  server.close();
  listener.close();
  assert.equal((await receiving).bytes.length, 0);
  assert.equal(await accepting, null);
  await assert.rejects(
    server.recv().then(() => server.send(enc("x"))),
    (e) => e instanceof NativeError && e.code === "handle_closed",
  );
  client.close();
  client.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("UnixSocket.connect() says item_not_found when nothing listens", async () => {
  const dir = await Deno.makeTempDir();
  assert.throws(
    () => UnixSocket.connect(`${dir}/none.sock`),
    (e) => e instanceof NativeError && e.code === "item_not_found" && /none\.sock/.test(e.message),
  );
  await Deno.remove(dir);
});

Deno.test("UnixSocket.lane() relays a connection and passes a listed query itself once the engine is idle", async () => {
  const dir = await Deno.makeTempDir();
  const libvirt = await pair(dir, "libvirt");
  const qemu = await pair(dir, "qemu");
  const { lane, client, upstream } = UnixSocket.lane(libvirt.server, qemu.client, [
    "query-status",
  ]);
  await assert.rejects(libvirt.server.send(enc("x")), /closed/, "the lane owns the socket now");
  const text = async (s: UnixSocket) => new TextDecoder().decode((await s.recv()).bytes);
  // Before the engine says it is idle, everything is the engine's.
  await libvirt.client.send(enc('{"execute": "query-status"}\n'));
  assert.equal(await text(client), '{"execute": "query-status"}\n');
  lane.idle(28, 0);
  await libvirt.client.send(enc('{"execute": "query-status"}\n'));
  assert.equal(await text(qemu.server), '{"execute": "query-status"}\n');
  await qemu.server.send(enc('{"return": {}}\n'));
  assert.equal(await text(libvirt.client), '{"return": {}}\n');
  assert.equal(lane.passed, 1);
  // The engine's ends closed: the lane closes libvirt's and QEMU's.
  client.close();
  upstream.close();
  assert.equal((await libvirt.client.recv()).bytes.length, 0);
  assert.equal((await qemu.server.recv()).bytes.length, 0);
  lane.close();
  for (const p of [libvirt, qemu]) [p.listener, p.client, p.server].forEach((s) => s.close());
  await Deno.remove(dir, { recursive: true });
});
