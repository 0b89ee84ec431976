/**
 * Wire protocol: a directory shared by the instances on one host (PROXY_SLOT_DIR), a ledger
 * of the proxy slots they took (src/pacing/sharedSlot.ts decides when to take one).
 *
 *   <dir>/claim-<seq, 12 digits>   one JSON line {"at": <ms since the epoch>, "owner": "<id>"}:
 *                                  slot <seq> was taken by <owner>, whose request started at <at>
 *   <dir>/tmp-<owner>-<seq>        a claim being written; a leftover of a process killed
 *                                  between writing and linking, removed when old
 *
 * A claim is written whole to its tmp file first, then link(2)ed to its `claim-` name. link
 * fails with EEXIST when the name exists, so each number goes to exactly one instance, and a
 * reader never sees a claim half written: no lock, and nothing for a process killed with -9
 * to leave held. Whoever claims removes the claims older than the newest KEEP. The files are
 * tiny and written at most once per slot; no fsync: after a host crash a lost claim costs at
 * most one 503 (there is no durability to keep, only pacing).
 *
 * Every error (a full disk, a directory removed or unwritable) is thrown to the caller,
 * which then paces on its own for that request (ProxySlots), as without the directory.
 */
import { linkSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SlotLedger } from '../pacing/sharedSlot.ts';

const CLAIM = /^claim-(\d{12})$/;
const KEEP = 8;
/** A tmp file older than this was left by a process killed mid-claim. */
const STALE_TMP_MS = 10 * 60_000;

const claimName = (seq: number): string => `claim-${String(seq).padStart(12, '0')}`;

export function openSlotDir(dir: string): SlotLedger {
  mkdirSync(dir, { recursive: true });
  const claimNumbers = (): number[] =>
    readdirSync(dir)
      .map((name) => CLAIM.exec(name)?.[1])
      .filter((digits): digits is string => digits !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  return {
    latest() {
      const seq = claimNumbers().at(-1);
      if (seq === undefined) return undefined;
      let text: string;
      try {
        text = readFileSync(join(dir, claimName(seq)), 'utf8');
      } catch (error) {
        // Removed between the listing and the read: only old claims are removed, so a newer one exists.
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return this.latest();
        throw error;
      }
      // A foreign or damaged file under a claim name still takes its number; it says nothing about time.
      const parsed = safeParse(text);
      return { seq, at: typeof parsed?.at === 'number' ? parsed.at : 0, owner: typeof parsed?.owner === 'string' ? parsed.owner : '' };
    },
    claim(seq, at, owner) {
      const tmp = join(dir, `tmp-${owner}-${seq}`);
      writeFileSync(tmp, `${JSON.stringify({ at, owner })}\n`);
      try {
        linkSync(tmp, join(dir, claimName(seq)));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw error;
      } finally {
        rmSync(tmp, { force: true });
      }
      prune(dir, seq, claimNumbers);
      return true;
    },
  };
}

function safeParse(text: string): { at?: unknown; owner?: unknown } | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as { at?: unknown; owner?: unknown }) : undefined;
  } catch {
    return undefined;
  }
}

/** Removes claims older than the newest KEEP, and stale tmp files. Best effort: another instance may be pruning too. */
function prune(dir: string, newest: number, claimNumbers: () => number[]): void {
  const now = Date.now();
  try {
    for (const seq of claimNumbers()) if (seq <= newest - KEEP) rmSync(join(dir, claimName(seq)), { force: true });
    for (const name of readdirSync(dir)) {
      if (!name.startsWith('tmp-')) continue;
      const file = join(dir, name);
      if (now - statSync(file, { throwIfNoEntry: false })!.mtimeMs > STALE_TMP_MS) rmSync(file, { force: true });
    }
  } catch {
    // Pruning is housekeeping; the claim itself was made.
  }
}
