import assert from "node:assert/strict";
import {
  CGROUP_FILTER_BITS,
  cgroupFilterHas,
  cgroupFilterVal,
  FastPathSummaries,
} from "./guard_config.ts";
import { CFG_BIND_EXEC, CFG_OPEN_CACHE, CFG_TASK_RULES, R } from "./guard_layout.ts";

/** What the kernel holds, and the check the programs' fast path relies on after every write. */
class Model {
  config = new Uint8Array(16);
  filter = new Uint8Array(CGROUP_FILTER_BITS / 8);
  rulesets = new Map<number, number>();
  /** task → rule set in its storage. */
  tasks = new Map<number, number>();
  cgroups = new Set<bigint>();
  /** Rule sets an exec may bind (path entries of rule set 0). */
  binds = new Set<number>();
  /** Rule sets any task was ever keyed or bound to. */
  everTasked = new Set<number>();
  writes = 0;

  get cfgFlags(): number {
    return new DataView(this.config.buffer).getUint32(4, true);
  }
  get cfgRules(): number {
    return new DataView(this.config.buffer).getUint32(12, true);
  }

  /** Nothing in force is skipped by the summaries. */
  check(where: string): void {
    this.writes++;
    for (const [id, f] of this.rulesets) {
      assert.equal((this.cfgRules & f) >>> 0, f >>> 0, `${where}: config.rules misses set ${id}`);
    }
    const carried = [...this.tasks.values()].some((id) => this.rulesets.has(id));
    if (carried) {
      assert.ok(this.cfgFlags & CFG_TASK_RULES, `${where}: a task carries a rule set unseen`);
    }
    for (const id of this.cgroups) {
      assert.ok(cgroupFilterHas(this.filter, id), `${where}: cgroup ${id} filtered out`);
    }
  }

  /** The summaries are exact once nothing is under way. */
  checkExact(agentFlags: number): void {
    let rules = 0;
    for (const f of this.rulesets.values()) rules |= f;
    assert.equal(this.cfgRules, rules >>> 0);
    const tasked = [...this.everTasked].some((id) => this.rulesets.has(id));
    assert.equal(this.cfgFlags & ~CFG_TASK_RULES, agentFlags);
    if (!tasked && !(agentFlags & CFG_BIND_EXEC)) {
      assert.equal(this.cfgFlags & CFG_TASK_RULES, 0, "CFG_TASK_RULES left on");
    }
    assert.deepEqual(this.filter, cgroupFilterVal(this.cgroups));
  }
}

function setup(): { m: Model; s: FastPathSummaries } {
  const m = new Model();
  const s = new FastPathSummaries(42, {
    config: (v) => {
      m.config = v;
      m.check("config write");
    },
    cgroupFilter: (v) => {
      m.filter = v;
      m.check("filter write");
    },
  });
  return { m, s };
}

Deno.test("summaries: a rule set's bits are in config.rules while it is active, not after", () => {
  const { m, s } = setup();
  s.setConfig({ flags: CFG_OPEN_CACHE, cgroupLevels: 2 });
  const f = R.ACTIVE | R.READ_PATHS | R.SYSLOG;
  s.ruleset(1, f, () => {
    m.rulesets.set(1, f);
    m.check("rule set 1 written");
  });
  assert.equal(m.cfgRules, f);
  assert.equal(new DataView(m.config.buffer).getUint32(0, true), 42);
  assert.equal(new DataView(m.config.buffer).getUint32(8, true), 2);
  // Narrowed in place: the old bits stay until the rule set is rewritten.
  const g = R.ACTIVE | R.EXEC_PATHS;
  s.ruleset(1, g, () => {
    assert.equal(m.cfgRules, (f | g) >>> 0, "widened to both before the write");
    m.rulesets.set(1, g);
    m.check("rule set 1 rewritten");
  });
  assert.equal(m.cfgRules, g);
  s.clearRuleset(1, () => {
    assert.equal(m.cfgRules, g, "narrowed only after the clear");
    m.rulesets.delete(1);
    m.check("rule set 1 cleared");
  });
  assert.equal(m.cfgRules, 0);
  assert.equal(m.cfgFlags, CFG_OPEN_CACHE);
});

Deno.test("summaries: CFG_TASK_RULES is on before a task is keyed and while its set is active", () => {
  const { m, s } = setup();
  s.setConfig({ flags: 0, cgroupLevels: 0 });
  s.ruleset(5, R.ACTIVE | R.PTRACE, () => m.rulesets.set(5, R.ACTIVE | R.PTRACE));
  assert.equal(m.cfgFlags & CFG_TASK_RULES, 0, "no task carries a set yet");
  s.tasked(5);
  assert.ok(m.cfgFlags & CFG_TASK_RULES);
  m.tasks.set(100, 5);
  m.check("task keyed");
  s.clearRuleset(5, () => m.rulesets.delete(5));
  assert.equal(m.cfgFlags & CFG_TASK_RULES, 0, "its set is gone: the task is the cgroup's");
  // The same set again: its tasks are confined again, so the flag comes back first.
  s.ruleset(5, R.ACTIVE | R.PTRACE, () => {
    assert.ok(m.cfgFlags & CFG_TASK_RULES, "on before the set is active again");
    m.rulesets.set(5, R.ACTIVE | R.PTRACE);
  });
  // Exec binding on: any task may be bound, so the flag is on whatever else.
  s.clearRuleset(5, () => m.rulesets.delete(5));
  s.setConfig({ flags: CFG_BIND_EXEC, cgroupLevels: 0 });
  assert.ok(m.cfgFlags & CFG_TASK_RULES);
  assert.ok(m.cfgFlags & CFG_BIND_EXEC);
});

Deno.test("summaries: a cgroup's filter bit is set before its key and cleared after", () => {
  const { m, s } = setup();
  const a = 7n, b = 7n + BigInt(CGROUP_FILTER_BITS); // the same bit
  s.cgroup(a, true, () => {
    assert.ok(cgroupFilterHas(m.filter, a), "bit set before the key");
    m.cgroups.add(a);
    m.check("cgroup a keyed");
  });
  s.cgroup(b, true, () => m.cgroups.add(b));
  s.cgroup(a, false, () => {
    m.cgroups.delete(a);
    m.check("cgroup a unkeyed");
  });
  assert.ok(cgroupFilterHas(m.filter, b), "b shares the bit: still set");
  assert.ok(!cgroupFilterHas(m.filter, 8n));
  s.cgroup(b, false, () => m.cgroups.delete(b));
  assert.deepEqual(m.filter, new Uint8Array(CGROUP_FILTER_BITS / 8));
});

Deno.test("cgroupFilterVal: bit id mod 512, little-endian words as the C reads them", () => {
  const v = cgroupFilterVal([0n, 63n, 64n, 511n, 512n + 65n]);
  const words = new BigUint64Array(v.buffer);
  assert.equal(words[0], 1n | (1n << 63n));
  assert.equal(words[1], 1n | 2n);
  assert.equal(words[7], 1n << 63n);
});

Deno.test("summaries: random rule, task, binding and cgroup changes never skip a rule in force", () => {
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const BITS = [R.READ_PATHS, R.WRITE_PATHS, R.EXEC_PATHS, R.PTRACE, R.SYSLOG, R.MOUNT, R.AUDIT];
  for (let trial = 0; trial < 50; trial++) {
    const { m, s } = setup();
    let agentFlags = 0;
    s.setConfig({ flags: agentFlags, cgroupLevels: 0 });
    for (let step = 0; step < 60; step++) {
      const id = 1 + rnd(4);
      switch (rnd(7)) {
        case 0:
        case 1: {
          let f = R.ACTIVE;
          for (const b of BITS) if (rnd(3) === 0) f |= b;
          f >>>= 0;
          s.ruleset(id, f, () => {
            m.rulesets.set(id, f);
            m.check(`set ${id}`);
          });
          break;
        }
        case 2:
          s.clearRuleset(id, () => {
            m.rulesets.delete(id);
            m.check(`clear ${id}`);
          });
          break;
        case 3: // setTask
          s.tasked(id);
          m.everTasked.add(id);
          m.tasks.set(rnd(10), id);
          m.check(`task keyed to ${id}`);
          break;
        case 4: // setPaths(0, binds) then config with binding on; the kernel may bind
          s.tasked(id);
          m.everTasked.add(id);
          m.binds.add(id);
          agentFlags = CFG_BIND_EXEC;
          s.setConfig({ flags: agentFlags, cgroupLevels: 0 });
          m.tasks.set(rnd(10), [...m.binds][rnd(m.binds.size)]!);
          m.check("bound at exec");
          break;
        case 5: {
          const cg = BigInt(rnd(2000));
          const keyed = rnd(2) === 0;
          s.cgroup(cg, keyed, () => {
            if (keyed) m.cgroups.add(cg);
            else m.cgroups.delete(cg);
            m.check(`cgroup ${cg}`);
          });
          break;
        }
        case 6: // binding off (bound tasks stay)
          agentFlags = 0;
          s.setConfig({ flags: agentFlags, cgroupLevels: 0 });
          m.check("binding off");
          break;
      }
      m.checkExact(agentFlags);
    }
    assert.ok(m.writes > 0);
  }
});
