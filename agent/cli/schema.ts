// PLACEHOLDER: replaced by its owner.
import type { Command } from "commander";
export function registerSchema(program: Command): void {
  program.command("schema").description("(not built yet)").action(() => {
    throw new Error("schema is not built yet");
  });
}
