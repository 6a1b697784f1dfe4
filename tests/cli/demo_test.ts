import assert from "node:assert/strict";
import { REPO_ROOT } from "./_run.ts";

// The README's first command: the agent on the kernel emulator, issuing and refusing.
Deno.test("deno task demo runs the agent against the emulator", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "demo"],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, stdout + new TextDecoder().decode(out.stderr));
  assert.match(stdout, /python3: csr_sign spiffe:\/\/acme.test\/web -> issued/);
  assert.match(stdout, /curl {3}: csr_sign spiffe:\/\/acme.test\/web -> refused/);
  assert.match(stdout, /no problems seen\ndemo: OK/);
});
