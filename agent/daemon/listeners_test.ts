import assert from "node:assert/strict";
import { ListenerTable, parseProcNetTcp } from "./listeners.ts";

Deno.test("parseProcNetTcp reads listeners only, IPv4 and IPv6 addresses decoded", () => {
  const v4 =
    `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0
   1: 0100007F:1F40 0100007F:D1B2 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0 20 4 30 10 -1
`;
  const v6 =
    `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0 100 0 0 10 0
`;
  assert.deepEqual(parseProcNetTcp(v4), [{ ip: "127.0.0.1", port: 8000, inode: 4242 }]);
  assert.deepEqual(parseProcNetTcp(v6), [{
    ip: "0000:0000:0000:0000:0000:0000:0000:0001",
    port: 80,
    inode: 777,
  }]);
});

Deno.test("ListenerTable finds this process's listener and its pid; closed ones go", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  const table = new ListenerTable();
  try {
    const found = (await table.scan()).find((s) => s.port === port && s.ip === "127.0.0.1");
    assert.ok(found, `listener on ${port} not found`);
    assert.equal(found.pid, Deno.pid);
  } finally {
    l.close();
  }
  assert.equal((await table.scan()).find((s) => s.port === port), undefined);
});
