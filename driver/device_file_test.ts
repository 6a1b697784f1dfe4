import assert from "node:assert/strict";
import { closeFd, DeviceError, ERRNO, openRawPty, writeOnce } from "./ffi.ts";
import { fileSink, openDeviceFile, startFileReader } from "./device_file.ts";
import { DeviceWriter, sharedNow } from "./transport.ts";
import { spawnReader } from "./reader_worker.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("open errors name the device and the errno, as the libc open's do", async () => {
  await assert.rejects(
    openDeviceFile("/nonexistent/camblet"),
    (e: unknown) =>
      e instanceof DeviceError && e.errno === ERRNO.ENOENT && e.code === "ENOENT" &&
      e.message.startsWith('Cannot open "/nonexistent/camblet": the device does not exist'),
  );
  await assert.rejects(
    openDeviceFile("/tmp"),
    (e: unknown) => e instanceof DeviceError && e.errno === ERRNO.EISDIR,
  );
});

Deno.test("the device is read in this isolate: chunks with their time, writes while a read waits, a hang-up is the end", async () => {
  const { masterFd, slavePath } = openRawPty();
  // The master side is read by a reader Worker, as the emulator does.
  const master = await spawnReader();
  const fromAgent: string[] = [];
  master.begin(masterFd, (c) => void fromAgent.push(dec.decode(c)));
  const file = await openDeviceFile(slavePath);
  const chunks: { text: string; at: number }[] = [];
  let timerRan = 0;
  const reader = startFileReader(file, (c, at) => void chunks.push({ text: dec.decode(c), at }));
  // The event loop is free while the read waits: timers run.
  await new Promise((r) => setTimeout(r, 50));
  const t = setInterval(() => timerRan++, 5);
  await new Promise((r) => setTimeout(r, 60));
  clearInterval(t);
  assert.ok(timerRan >= 3, `timers ran ${timerRan} times while a read was pending`);
  // A write is not queued behind the pending read (protocol doc, Deno note).
  const writer = new DeviceWriter(fileSink(file));
  assert.equal(writer.writeAnswer('{"answer":1}\n'), true);
  const before = sharedNow();
  writeOnce(masterFd, enc.encode('{"command":"augment"}\n'));
  for (let i = 0; i < 100 && (chunks.length === 0 || fromAgent.length === 0); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.deepEqual(chunks.map((c) => c.text), ['{"command":"augment"}\n']);
  assert.ok(chunks[0]!.at >= before, "time stamped when the read returned");
  assert.deepEqual(fromAgent, ['{"answer":1}\n']);
  // The emulator closing its side is a hang-up (EIO): the end of the device, not an error.
  master.stop();
  writer.writeAnswer("\n"); // wakes the master's reader, which then ends
  await master.ended;
  closeFd(masterFd);
  assert.deepEqual(await reader.ended, { reason: "eof" });
  writer.close();
});

Deno.test("stop ends the loop after the pending read returns, and that read is still delivered", async () => {
  const { masterFd, slavePath } = openRawPty();
  const file = await openDeviceFile(slavePath);
  const chunks: string[] = [];
  const reader = startFileReader(file, (c) => void chunks.push(dec.decode(c)));
  await new Promise((r) => setTimeout(r, 30));
  reader.stop();
  let ended = false;
  void reader.ended.then(() => ended = true);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(ended, false, "a pending read is not abandoned");
  writeOnce(masterFd, enc.encode('{"last":true}\n'));
  assert.deepEqual(await reader.ended, { reason: "eof" });
  assert.deepEqual(chunks, ['{"last":true}\n']);
  file.close();
  closeFd(masterFd);
});

Deno.test("EINTR is retried and another read error ends the loop naming its errno", async () => {
  let calls = 0;
  const fake = {
    read(_p: Uint8Array): Promise<number | null> {
      calls++;
      if (calls === 1) return Promise.reject(new Deno.errors.Interrupted("woken"));
      const e = Object.assign(new Error("Bad address (os error 14)"), { code: "EFAULT" });
      return Promise.reject(e);
    },
  };
  const end = await startFileReader(fake, () => {}).ended;
  assert.equal(calls, 2);
  assert.deepEqual(end, {
    reason: "error",
    errno: ERRNO.EFAULT,
    message: "Cannot read the kernel device: EFAULT",
  });
});
