import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { UsageError } from '../errors.ts';

/**
 * The reject file: a CSV with `line` (where the row starts in the input) and `reason`, then the row's fields
 * exactly as read under the input's own header. After fixing the values it loads again with the same
 * options (the extra `line` and `reason` columns are ignored). Created on the first reject only.
 */
export class RejectWriter {
  readonly path: string;
  readonly header: string[];
  count = 0;
  private out: WriteStream | undefined;
  private failure: Error | undefined;

  constructor(file: string, header: string[], input: string) {
    if (path.resolve(file) === path.resolve(input)) throw new UsageError(`--rejects ${file} is the input file itself`, 'choose another reject file');
    this.path = file;
    this.header = header;
  }

  async write(line: number, reason: string, fields: string[]): Promise<void> {
    if (!this.out) {
      this.out = createWriteStream(this.path);
      this.out.on('error', (err) => { this.failure ??= err; });
      this.out.write(stringify([['line', 'reason', ...this.header]]));
    }
    if (this.failure) throw new Error(`cannot write the reject file ${this.path}: ${this.failure.message}`, { cause: this.failure });
    this.count++;
    if (!this.out.write(stringify([[String(line), reason, ...fields]]))) await once(this.out, 'drain');
  }

  /** Flushes the file; with no rejects, removes a reject file a previous load left at this path. */
  async close(): Promise<void> {
    if (this.out) {
      const out = this.out;
      await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    } else {
      await rm(this.path, { force: true });
    }
  }

  /** After a failed load: a partial reject file would describe a load that did not happen. */
  async discard(): Promise<void> {
    if (this.out) {
      this.out.destroy();
      this.out = undefined;
    }
    await rm(this.path, { force: true });
  }
}
