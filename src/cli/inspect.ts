import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { anonymizeAddress } from '../domain/anonymizeAddress.ts';
import { splitFrames } from '../domain/capnpFraming.ts';
import { decodeRecord } from '../domain/decodeRecord.ts';
import { toStoredRowJson } from '../domain/httpLogRow.ts';
import { AnonymizerError, FramingError } from '../errors.ts';

export function inspectCommand(): Command {
  return new Command('inspect')
    .description("Print, one JSON line each, the rows that Cap'n Proto messages (standard framing, back to back) would become.")
    .argument('[file]', 'a file of messages; standard input when absent or -')
    .addHelpText(
      'after',
      `
Each line is the row exactly as it would be stored in http_log (address anonymized,
timestamp in UTC, UInt64 as decimal strings), or {"error": …} for a message that cannot
become a row. A stream that ends inside a message exits with code 1.

Examples:
  anonymizer inspect records.bin
  capnp encode schema/http_log.capnp HttpLogRecord < record.txt | anonymizer inspect`,
    )
    .action(async (file: string | undefined) => {
      const input = file === undefined || file === '-' ? await readStdin() : await readFile(file);
      process.exitCode = inspect(input, (line) => process.stdout.write(`${line}\n`));
    });
}

/** Writes one JSON line per message; returns the exit code (1 when the stream is broken). */
export function inspect(input: Uint8Array, writeLine: (line: string) => void): number {
  let index = 0;
  try {
    for (const frame of splitFrames(input)) {
      try {
        const record = decodeRecord(frame.bytes);
        const { rawRemoteAddr, ...fields } = record;
        writeLine(JSON.stringify(toStoredRowJson({ ...fields, remoteAddr: anonymizeAddress(rawRemoteAddr).value })));
      } catch (error) {
        const failure = error instanceof AnonymizerError ? error : new AnonymizerError(String(error), 'ANON_DECODE', false, 'processing');
        writeLine(JSON.stringify({ error: failure.message, code: failure.code, message: index, byteOffset: frame.offset }));
      }
      index++;
    }
  } catch (error) {
    if (!(error instanceof FramingError)) throw error;
    writeLine(JSON.stringify({ error: error.message, code: error.code, message: index }));
    return 1;
  }
  return 0;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
