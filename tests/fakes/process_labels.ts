/**
 * The real process attestor asked by pid, as the daemon asks it (it reads /proc when called), for
 * tests that judge events against live processes.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { taskContextFromProc } from "../../plugins/attestor/_lib/task_from_proc.ts";
import { labelStrings } from "../../plugins/attestor/_lib/labels.ts";
import { ProcessAttestor } from "../../plugins/attestor/process/process.ts";

/** `labelsOf(pid)` through a real {@linkcode ProcessAttestor} (throws when the pid is gone). */
export function processLabelsOf(): {
  labelsOf(pid: number): Promise<string[]>;
  dispose(): void;
} {
  const attestor = new ProcessAttestor(
    { enabled: true, extractEnvs: false, envAllowList: [], hashTimeoutMs: 10_000 },
    { log: getLogger(["camblet", "test"]) },
  );
  return {
    labelsOf: async (pid) => {
      const task = taskContextFromProc(pid);
      if (!task) throw new Error(`pid ${pid} is gone`);
      return labelStrings(await attestor.collect(task, AbortSignal.timeout(5000)));
    },
    dispose: () => attestor.dispose(),
  };
}
