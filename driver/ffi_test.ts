import assert from "node:assert/strict";
import { skip } from "../tests/_skip.ts";
import {
  closeFd,
  DeviceError,
  ERRNO,
  openDevice,
  openErrorMessage,
  setTtyExclusive,
} from "./ffi.ts";
import { PtyDevice } from "./emulator/pty_device.ts";

Deno.test("open errors explain themselves", () => {
  assert.match(
    openErrorMessage("/dev/camblet", ERRNO.EBUSY),
    /^Cannot open "\/dev\/camblet": another agent already holds \/dev\/camblet .*\(EBUSY\)$/,
  );
  const enoent = openErrorMessage("/dev/camblet", ERRNO.ENOENT);
  assert.match(enoent, /camblet kernel module is not loaded/);
  assert.match(enoent, /apt install dkms linux-headers-\$\(uname -r\)/);
  assert.match(enoent, /modprobe camblet/);
  assert.match(openErrorMessage("/dev/camblet", ERRNO.EACCES), /run the agent as root \(EACCES\)/);
  assert.match(openErrorMessage("/dev/camblet", 200), /errno 200$/);
});

Deno.test("opening a missing device fails with ENOENT and the DKMS hint", () => {
  assert.throws(
    () => openDevice("/dev/camblet-does-not-exist"),
    (e: unknown) => e instanceof DeviceError && e.code === "ENOENT" && /dkms/.test(e.message),
  );
});

Deno.test({
  name: "a second holder of the device gets EBUSY with the explanation (real kernel errno)",
  ignore: skip(
    (Deno.uid() !== 0 || !Deno.statSync("/usr/bin/setpriv").isFile) &&
      "needs root and /usr/bin/setpriv",
  ),
  fn: async () => {
    // TIOCEXCL makes the kernel refuse further opens of the tty with EBUSY, except for root:
    // the second opener runs as nobody.
    const pty = await PtyDevice.open(() => {});
    const fd = openDevice(pty.path);
    const denoDir = await Deno.makeTempDir();
    try {
      setTtyExclusive(fd);
      await Deno.chmod(pty.path, 0o666);
      await Deno.chmod(denoDir, 0o777);
      const code = `import { openDevice } from "${new URL("./ffi.ts", import.meta.url).href}";
        try { openDevice(${JSON.stringify(pty.path)}); console.log("opened"); }
        catch (e) { console.log(e.code + ": " + e.message); }`;
      const out = await new Deno.Command("/usr/bin/setpriv", {
        args: [
          "--reuid=nobody",
          "--regid=nogroup",
          "--clear-groups",
          Deno.execPath(),
          "eval",
          "--no-check",
          code,
        ],
        env: { DENO_DIR: denoDir, HOME: denoDir, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.match(
        text,
        /^EBUSY: Cannot open "\/dev\/pts\/\d+": another agent already holds/m,
        text,
      );
    } finally {
      closeFd(fd);
      await pty.close();
      await Deno.remove(denoDir, { recursive: true });
    }
  },
});
