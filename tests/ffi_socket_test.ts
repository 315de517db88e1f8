import assert from "node:assert/strict";
import { closeFd, NativeError, UnixSocket, Waker } from "../ffi/mod.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const openFds = () => [...Deno.readDirSync("/proc/self/fd")].length;

async function pair(dir: string) {
  const listener = UnixSocket.listen(`${dir}/s.sock`);
  const accepted = listener.accept();
  const client = UnixSocket.connect(`${dir}/s.sock`);
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

Deno.test("UnixSocket.recvNow() takes what arrived without waiting; readyNow() and ready() say which socket has something", async () => {
  const dir = await Deno.makeTempDir();
  const { listener, client, server } = await pair(dir);
  assert.equal(server.recvNow(), null, "nothing has arrived");
  assert.equal(UnixSocket.readyNow(server, client, 0), 0);
  await client.send(enc("ab"));
  assert.equal(UnixSocket.readyNow(server, client, 1000), 1);
  assert.equal(UnixSocket.readyNow(null, server, 0), 2);
  assert.equal(new TextDecoder().decode(server.recvNow()!.bytes), "ab");
  // A wait on a worker thread: ended by bytes, by the waker, by a close.
  using waker = new Waker();
  const byBytes = UnixSocket.ready(server, client, waker);
  await server.send(enc("c"));
  assert.equal(await byBytes, 2);
  assert.equal(new TextDecoder().decode(client.recvNow()!.bytes), "c");
  const woken = UnixSocket.ready(server, client, waker);
  waker.wake();
  assert.equal(await woken, 4);
  const byClose = UnixSocket.ready(server, null, waker);
  client.close();
  assert.equal(await byClose, 1, "the peer's end of the stream is ready");
  assert.equal(server.recvNow()!.bytes.length, 0);
  server.close();
  assert.equal(
    UnixSocket.readyNow(server, null, 0),
    1,
    "a closed socket is ready: it reads the end",
  );
  assert.deepEqual(server.recvNow(), { bytes: new Uint8Array(0), fds: [] });
  listener.close();
  await Deno.remove(dir, { recursive: true });
});
