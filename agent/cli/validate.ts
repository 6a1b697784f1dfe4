// PLACEHOLDER: replaced by its owner.
import type { Command } from "commander";
export function registerValidate(program: Command): void {
  program.command("validate").description("(not built yet)").action(() => {
    throw new Error("validate is not built yet");
  });
}
