// PLACEHOLDER: replaced by its owner.
import type { Command } from "commander";
export function registerExplain(program: Command): void {
  program.command("explain").description("(not built yet)").action(() => {
    throw new Error("explain is not built yet");
  });
}
