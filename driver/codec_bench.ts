/**
 * parseKernelLine on the captured kernel lines (the hot path of every request) and on hostile
 * ones. `CAMBLET_CODEC_BEFORE=<checkout>` also benches that checkout's codec, side by side.
 */
import { parseKernelLine } from "./codec.ts";
import { readTranscript } from "./emulator/replay.ts";

const DIR = new URL("../tests/testdata/camblet-driver/transcripts/", import.meta.url);
const lines: string[] = [];
for (const e of Deno.readDirSync(DIR)) {
  for (const t of await readTranscript(new URL(e.name, DIR))) {
    if (t.dir === "kernel->agent") lines.push(t.raw);
  }
}
const csr = lines.find((l) => l.includes('"csr_sign"'))!;
const hostile = [
  csr.slice(0, Math.floor(csr.length / 2)),
  csr.replace('"command":"csr_sign"', '"command":"constructor"'),
  csr.replace('"is_message":false', '"is_message":"false"'),
];
const before = Deno.env.get("CAMBLET_CODEC_BEFORE");
const impls: [string, (l: string) => unknown][] = [["now", parseKernelLine]];
if (before) {
  const m = await import(`${before.replace(/\/?$/, "/")}driver/codec.ts`);
  impls.push(["before", m.parseKernelLine]);
}
for (const [name, parse] of impls) {
  Deno.bench(
    `parseKernelLine ${name}: ${lines.length} captured lines`,
    { group: "captured" },
    () => {
      for (const l of lines) parse(l);
    },
  );
  Deno.bench(`parseKernelLine ${name}: 3 broken csr_sign lines`, { group: "hostile" }, () => {
    for (const l of hostile) {
      try {
        parse(l);
      } catch { /* the old codec threw on none of these, but be safe */ }
    }
  });
}
