/**
 * The emulator's character device: a raw pty. The agent opens the slave (`path`) as it would open
 * `/dev/camblet`; the emulator reads and writes the master. Unlike the real module a pty delivers
 * bytes, not messages: one read may return part of a message or several (which the agent must
 * handle), and write boundaries are not visible on the other side.
 *
 * @module
 */
import { closeFd, openDevice, openRawPty, writeOnce } from "../ffi.ts";
import { type Reader, spawnReader } from "../reader_worker.ts";

/** A raw pty pair presented as a device path. */
export class PtyDevice {
  /** The slave path to pass as `--kernel-module-device`. */
  readonly path: string;
  readonly #master: number;
  /** Our own slave fd: keeps the pty alive while no agent has it open, and wakes our reader. */
  readonly #keeper: number;
  #reader: Reader | undefined;
  #closed = false;

  private constructor(master: number, path: string, keeper: number) {
    this.#master = master;
    this.path = path;
    this.#keeper = keeper;
  }

  /**
   * Opens a new raw pty and starts delivering what the agent writes, chunk by chunk, with the
   * time each read returned.
   */
  static async open(onChunk: (chunk: Uint8Array, at: number) => void): Promise<PtyDevice> {
    const reader = await spawnReader();
    const { masterFd, slavePath } = openRawPty();
    const keeper = openDevice(slavePath);
    const device = new PtyDevice(masterFd, slavePath, keeper);
    device.#reader = reader;
    // The byte close() writes to wake the reader is ours, not the agent's.
    reader.begin(masterFd, (chunk, at) => {
      if (!device.#closed) onChunk(chunk, at);
    });
    return device;
  }

  /** Writes `bytes` to the agent in one `write()` on the master (blocks until the pty takes all). */
  write(bytes: Uint8Array<ArrayBuffer>): void {
    let off = 0;
    while (off < bytes.length) {
      off += writeOnce(this.#master, off === 0 ? bytes : bytes.slice(off), "pty master");
    }
  }

  /**
   * Stops reading and closes the pty. The agent's next read fails with `EIO` (a hang-up), which
   * it treats as the end of the device.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#reader) {
      // The pending master read only returns when bytes arrive: send one from our slave fd.
      this.#reader.stop();
      writeOnce(this.#keeper, new Uint8Array([10]), "pty keeper");
      await this.#reader.ended;
    }
    closeFd(this.#keeper);
    closeFd(this.#master);
  }
}
