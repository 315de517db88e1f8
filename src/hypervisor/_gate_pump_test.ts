import assert from "node:assert/strict";
import { UnixSocket } from "../../ffi/mod.ts";
import { pumped } from "./_gate_pump.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** A connected pair of libvasp sockets: [the pump's end, the far end]. */
async function connected(path: string): Promise<[UnixSocket, UnixSocket, UnixSocket]> {
  const listener = UnixSocket.listen(path);
  const accepted = listener.accept();
  const far = UnixSocket.connect(path);
  return [(await accepted)!, far, listener];
}

for (const spinMs of [0, 2]) {
  Deno.test(`pumped() waiting ${spinMs} ms on the main thread: each side gets its own bytes in order, one side busy while the other flows, and closing ends a wait`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "vasp-pump-" });
    const [a, farA, la] = await connected(`${dir}/a.sock`);
    const [b, farB, lb] = await connected(`${dir}/b.sock`);
    const [client, upstream] = pumped(a, b, spinMs);
    try {
      // Turns, as libvirt and QEMU take them: a command on one side, the reply on the other.
      for (let i = 0; i < 50; i++) {
        const command = client.recv();
        await farA.send(enc(`cmd ${i}`));
        assert.equal(dec((await command).bytes), `cmd ${i}`);
        const reply = upstream.recv();
        await farB.send(enc(`reply ${i}`));
        assert.equal(dec((await reply).bytes), `reply ${i}`);
      }
      // The client's side is busy (no receive on it, as while a decision is asked); its bytes
      // wait in the socket while the other side's flow.
      await farA.send(enc("held"));
      for (let i = 0; i < 3; i++) {
        const event = upstream.recv();
        await farB.send(enc(`event ${i}`));
        assert.equal(dec((await event).bytes), `event ${i}`);
      }
      const waiting = upstream.recv();
      assert.equal(dec((await client.recv()).bytes), "held");
      // Now the pump waits for QEMU's side alone, on a worker thread; a receive on the client's
      // side must end that wait to be watched too.
      await new Promise((r) => setTimeout(r, 20));
      const next = client.recv();
      await new Promise((r) => setTimeout(r, 20));
      await farA.send(enc("late"));
      assert.equal(dec((await next).bytes), "late");
      await farB.send(enc("last"));
      assert.equal(dec((await waiting).bytes), "last");
      // The peer's end, then our close of a side that waits.
      const ends = upstream.recv();
      farB.close();
      assert.equal((await ends).bytes.length, 0);
      const closing = client.recv();
      client.close();
      assert.equal((await closing).bytes.length, 0);
    } finally {
      client.close();
      upstream.close();
      for (const s of [farA, farB, la, lb]) s.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}
