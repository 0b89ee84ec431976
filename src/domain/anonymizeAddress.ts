/**
 * Client-address anonymisation (GDPR).
 *
 * Why: a client IP address is personal data. Before an access-log record leaves
 * this process (towards ClickHouse) we drop the *host* part of the address and
 * keep only the *network* part:
 *
 *  - IPv4: keep the /24 (first three octets), replace the last octet with `X`
 *    (`1.2.3.4` → `1.2.3.X`). This is exactly the rule the user asked for.
 *  - IPv6: keep the /48 (first three hextets), the usual routing prefix that is
 *    assigned to a site; everything below it (subnet id + interface id, which may
 *    embed a MAC address or otherwise identify a single device) is dropped
 *    (`2001:db8:85a3::8a2e:370:7334` → `2001:db8:85a3::X`).
 *  - IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is really an IPv4 client seen through a
 *    dual-stack socket, so it follows the IPv4 rule (`1.2.3.X`). Applying the IPv6
 *    rule would give `0:0:0::X` and lose the network-level information.
 *
 * Both prefixes keep network-level analytics (ISP / AS / region, per-network
 * traffic totals) while no stored value identifies a single host.
 *
 * Anything that is not a well-formed address becomes `X` with kind `invalid`
 * (the caller counts those): nothing of an unparseable input is ever stored,
 * because we cannot know which part of it is the host.
 *
 * Accepted syntax (after trimming surrounding whitespace):
 *  - `a.b.c.d` or `a.b.c.d:port`; octets are 0–255 in decimal *without* leading
 *    zeros (like inet_pton: `01.2.3.4` could mean octal, so it is rejected);
 *    port is 1–5 digits, 0–65535.
 *  - an IPv6 address as accepted by RFC 4291 text form (`::` compression, an
 *    embedded trailing dotted IPv4, any case), optionally followed by a zone id
 *    `%zone` (dropped; zone chars are `[0-9A-Za-z.:-]`, the set Node's
 *    `net.isIPv6` accepts), optionally inside `[...]`, optionally followed by
 *    `:port` after the `]`.
 *
 * Implementation: a hand-written single-pass parser over char codes (no regex,
 * so no backtracking hazard; linear in the input length). The only allocation
 * on the happy path is the output string and the result object. It is pure and
 * portable (no `node:net`); a module-level scratch buffer is used, which is safe
 * because the function is synchronous and never re-entered.
 */

export type AddressKind = 'ipv4' | 'ipv6' | 'ipv4-mapped' | 'invalid';

export interface AnonymizedAddress {
  readonly value: string;
  readonly kind: AddressKind;
}

const INVALID: AnonymizedAddress = Object.freeze({ value: 'X', kind: 'invalid' });

/** Scratch space for the 8 hextets of an IPv6 address (module-level: no per-call allocation). */
const hextets = new Uint16Array(8);

// Char codes.
const C_0 = 48;
const C_9 = 57;
const C_A = 65;
const C_F = 70;
const C_Z = 90;
const C_a = 97;
const C_f = 102;
const C_z = 122;
const C_DOT = 46;
const C_COLON = 58;
const C_DASH = 45;
const C_PERCENT = 37;
const C_LBRACKET = 91;

/**
 * Parses a strict dotted-quad IPv4 occupying exactly `s[start, end)`.
 * Returns the address as an unsigned 32-bit number, or -1 if invalid.
 */
function parseIPv4(s: string, start: number, end: number): number {
  let p = start;
  let result = 0;
  for (let octet = 0; octet < 4; octet++) {
    if (octet > 0) {
      if (p >= end || s.charCodeAt(p) !== C_DOT) return -1;
      p++;
    }
    const digitsStart = p;
    let value = 0;
    while (p < end) {
      const c = s.charCodeAt(p);
      if (c < C_0 || c > C_9) break;
      if (p - digitsStart === 3) return -1; // a 4th digit: > 255 or leading zeros
      value = value * 10 + (c - C_0);
      p++;
    }
    const digits = p - digitsStart;
    if (digits === 0 || value > 255) return -1;
    if (digits > 1 && s.charCodeAt(digitsStart) === C_0) return -1; // leading zero (octal ambiguity)
    result = result * 256 + value;
  }
  return p === end ? result : -1;
}

/** True iff `s[start, end)` is a decimal port: 1–5 digits, value 0–65535. */
function isPort(s: string, start: number, end: number): boolean {
  const len = end - start;
  if (len < 1 || len > 5) return false;
  let value = 0;
  for (let p = start; p < end; p++) {
    const c = s.charCodeAt(p);
    if (c < C_0 || c > C_9) return false;
    value = value * 10 + (c - C_0);
  }
  return value <= 65535;
}

/** Value of a hex digit char code, or -1. */
function hexValue(c: number): number {
  if (c >= C_0 && c <= C_9) return c - C_0;
  if (c >= C_a && c <= C_f) return c - C_a + 10;
  if (c >= C_A && c <= C_F) return c - C_A + 10;
  return -1;
}

/** Zone id chars: `[0-9A-Za-z.:-]`. */
function isZoneChar(c: number): boolean {
  return (
    (c >= C_0 && c <= C_9) ||
    (c >= C_a && c <= C_z) ||
    (c >= C_A && c <= C_Z) ||
    c === C_DOT ||
    c === C_COLON ||
    c === C_DASH
  );
}

/**
 * Parses an IPv6 address (without brackets, zone or port) occupying exactly
 * `s[start, end)` into `hextets`. Returns false if invalid.
 */
function parseIPv6Body(s: string, start: number, end: number): boolean {
  let p = start;
  let n = 0; // groups parsed
  let gap = -1; // index in `hextets` where `::` occurred, or -1
  if (p >= end) return false;
  if (s.charCodeAt(p) === C_COLON) {
    if (p + 1 >= end || s.charCodeAt(p + 1) !== C_COLON) return false;
    gap = 0;
    p += 2;
  }
  if (p < end) {
    for (;;) {
      const groupStart = p;
      let value = 0;
      while (p < end) {
        const h = hexValue(s.charCodeAt(p));
        if (h < 0) break;
        if (p - groupStart === 4) return false; // more than 4 hex digits
        value = value * 16 + h;
        p++;
      }
      if (p < end && s.charCodeAt(p) === C_DOT) {
        // Embedded dotted IPv4: must be the last thing and fill 2 groups.
        if (n > 6) return false;
        const v4 = parseIPv4(s, groupStart, end);
        if (v4 < 0) return false;
        hextets[n++] = v4 >>> 16;
        hextets[n++] = v4 & 0xffff;
        break;
      }
      if (p === groupStart || n === 8) return false; // empty group / too many groups
      hextets[n++] = value;
      if (p === end) break;
      if (s.charCodeAt(p) !== C_COLON) return false;
      p++;
      if (p < end && s.charCodeAt(p) === C_COLON) {
        if (gap >= 0) return false; // a second `::`
        gap = n;
        p++;
        if (p === end) break;
      }
    }
  }
  if (gap < 0) return n === 8;
  if (n > 7) return false; // `::` stands for at least one zero group
  // Expand `::`: move the groups after the gap to the end, zero-fill the gap.
  const tail = n - gap;
  for (let i = 0; i < tail; i++) hextets[7 - i] = hextets[n - 1 - i]!;
  for (let i = gap; i < 8 - tail; i++) hextets[i] = 0;
  return true;
}

/**
 * Parses IPv6 with optional `%zone` in `s[start, end)` and builds the result.
 */
function anonymizeIPv6(s: string, start: number, end: number): AnonymizedAddress {
  let bodyEnd = end;
  for (let p = start; p < end; p++) {
    if (s.charCodeAt(p) === C_PERCENT) {
      bodyEnd = p;
      break;
    }
  }
  if (bodyEnd < end) {
    if (bodyEnd + 1 === end) return INVALID; // empty zone
    for (let p = bodyEnd + 1; p < end; p++) {
      if (!isZoneChar(s.charCodeAt(p))) return INVALID;
    }
  }
  if (!parseIPv6Body(s, start, bodyEnd)) return INVALID;
  const h = hextets;
  if (h[0] === 0 && h[1] === 0 && h[2] === 0 && h[3] === 0 && h[4] === 0 && h[5] === 0xffff) {
    const hi = h[6]!;
    const lo = h[7]!;
    return { value: `${hi >>> 8}.${hi & 0xff}.${lo >>> 8}.X`, kind: 'ipv4-mapped' };
  }
  return {
    value: `${h[0]!.toString(16)}:${h[1]!.toString(16)}:${h[2]!.toString(16)}::X`,
    kind: 'ipv6',
  };
}

/** The GDPR rule: drop the host part of a client address before it leaves the process. */
export function anonymizeAddress(raw: string): AnonymizedAddress {
  if (typeof raw !== 'string') return INVALID; // defensive: never throw on bad runtime input
  const s = raw.trim();
  const end = s.length;
  if (end === 0) return INVALID;

  // `[ipv6]` or `[ipv6]:port`
  if (s.charCodeAt(0) === C_LBRACKET) {
    const close = s.indexOf(']', 1);
    if (close < 0) return INVALID;
    if (close + 1 < end) {
      if (s.charCodeAt(close + 1) !== C_COLON || !isPort(s, close + 2, end)) return INVALID;
    }
    return anonymizeIPv6(s, 1, close);
  }

  // A '.' before the first ':' (or no ':' at all) can only be IPv4[:port];
  // a valid IPv6 always has a ':' before any '.'.
  let firstColon = -1;
  let sawDot = false;
  for (let p = 0; p < end; p++) {
    const c = s.charCodeAt(p);
    if (c === C_COLON) {
      firstColon = p;
      break;
    }
    if (c === C_DOT) sawDot = true;
  }

  if (firstColon < 0 || sawDot) {
    const hostEnd = firstColon < 0 ? end : firstColon;
    const v4 = parseIPv4(s, 0, hostEnd);
    if (v4 < 0) return INVALID;
    if (firstColon >= 0 && !isPort(s, firstColon + 1, end)) return INVALID;
    return { value: `${v4 >>> 24}.${(v4 >>> 16) & 0xff}.${(v4 >>> 8) & 0xff}.X`, kind: 'ipv4' };
  }

  return anonymizeIPv6(s, 0, end);
}

/**
 * The same rule for addresses written inside a URL (`/proxy?to=10.1.2.3`,
 * `http://[2001:db8::1]/`, a text pointer that landed on address bytes): each literal
 * keeps its network part, as `anonymizeAddress` would (`10.1.2.X`, `2001:db8:0::X`).
 *
 * - IPv6: a maximal run of hex digits, `:` and `.` holding at least two `:` that parses
 *   as an IPv6 address (an IPv4-mapped one follows the IPv4 rule) is replaced whole.
 * - IPv4, erring on the side of privacy: in every maximal run of digits and dots, any
 *   four consecutive digit groups whose middle two are octets (1–3 digits, ≤ 255) have
 *   their fourth group replaced by `X`. The first group may be longer (`510.77.3.4` ends
 *   in the address `10.77.3.4`) and the fourth may be followed by more digits
 *   (`10.77.3.45` begins with it): neither leaves the address's text in the URL. Leading
 *   zeros count too (`010.001.002.003` is an address to `inet_aton`). A version string
 *   with four numeric parts (`/lib-1.2.3.4.js`) loses its last part: the price of never
 *   storing an address; `ANONYMIZE_URL_ADDRESSES=0` keeps URLs verbatim.
 *
 * Linear in the URL's length, and a URL with no digit next to a `.` and no `:` (most of
 * them) is returned as it is after one scan, without allocating.
 */
export function anonymizeUrlAddresses(url: string): string {
  // A cheap look first (native indexOf, no per-character loop over most URLs): IPv6 needs
  // two ':'; IPv4 a run of four digit groups joined by three dots, which file names and
  // versions rarely have.
  const firstColon = url.indexOf(':');
  const colons = firstColon >= 0 && url.indexOf(':', firstColon + 1) >= 0 ? 2 : 0;
  let quad = false;
  let joins = 0;
  let previousJoin = -1;
  for (let dot = url.indexOf('.'); dot >= 0 && !quad; dot = url.indexOf('.', dot + 1)) {
    if (dot === 0 || dot + 1 >= url.length || !isDigit(url.charCodeAt(dot - 1)) || !isDigit(url.charCodeAt(dot + 1))) {
      joins = 0;
      continue;
    }
    let digitsSince = previousJoin >= 0;
    for (let p = previousJoin + 1; digitsSince && p < dot; p++) digitsSince = isDigit(url.charCodeAt(p));
    joins = digitsSince ? joins + 1 : 1;
    previousJoin = dot;
    if (joins >= 3) quad = true;
  }
  let out = colons >= 2 ? replaceIPv6(url) : url;
  if (quad || out !== url) out = replaceIPv4(out);
  return out;
}

function isDigit(c: number): boolean {
  return c >= C_0 && c <= C_9;
}

function isIPv6RunChar(c: number): boolean {
  return hexValue(c) >= 0 || c === C_COLON || c === C_DOT;
}

function replaceIPv6(url: string): string {
  let out = '';
  let copied = 0;
  for (let i = 0; i < url.length; ) {
    if (!isIPv6RunChar(url.charCodeAt(i))) {
      i++;
      continue;
    }
    const start = i;
    let colons = 0;
    while (i < url.length && isIPv6RunChar(url.charCodeAt(i))) {
      if (url.charCodeAt(i) === C_COLON) colons++;
      i++;
    }
    if (colons < 2) continue;
    let from = start;
    let end = i;
    let parsed = anonymizeIPv6(url, from, end);
    if (parsed.kind === 'invalid') {
      // The run may take in hex letters or digits of the URL around the address
      // (`/cafe2001:db8::1`, `…::1abcde`) or a '.'/':' after it (`…::1.`): trim the first
      // and last groups to four hex digits and the end of separators, and try again.
      const firstColon = url.indexOf(':', from);
      if (firstColon - from > 4) from = firstColon - 4;
      let lastColon = url.lastIndexOf(':', end - 1);
      while (end > lastColon + 1 && (url.charCodeAt(end - 1) === C_DOT || url.charCodeAt(end - 1) === C_COLON)) {
        end--;
        lastColon = url.lastIndexOf(':', end - 1);
      }
      const dot = url.indexOf('.', lastColon);
      if ((dot < 0 || dot >= end) && end - lastColon - 1 > 4) end = lastColon + 5;
      parsed = anonymizeIPv6(url, from, end);
    }
    if (parsed.kind === 'invalid') continue;
    out += url.slice(copied, from) + parsed.value;
    copied = end;
  }
  return copied === 0 ? url : out + url.slice(copied);
}

function isOctet(s: string, start: number, end: number): boolean {
  const digits = end - start;
  if (digits < 1 || digits > 3) return false;
  let value = 0;
  for (let p = start; p < end; p++) value = value * 10 + (s.charCodeAt(p) - C_0);
  return value <= 255;
}

/** Group boundaries of the current run of digits and dots (module-level scratch: no per-call allocation). */
const groupStarts: number[] = [];
const groupEnds: number[] = [];

function replaceIPv4(url: string): string {
  let out = '';
  let copied = 0;
  for (let i = 0; i < url.length; ) {
    const c = url.charCodeAt(i);
    if (!isDigit(c) && c !== C_DOT) {
      i++;
      continue;
    }
    // One run of digits and dots, split into its groups (an empty group breaks the chain).
    groupStarts.length = 0;
    groupEnds.length = 0;
    let groupStart = i;
    while (i <= url.length) {
      const d = i < url.length ? url.charCodeAt(i) : -1;
      if (isDigit(d)) {
        i++;
        continue;
      }
      groupStarts.push(groupStart);
      groupEnds.push(i);
      if (d !== C_DOT) break;
      i++;
      groupStart = i;
    }
    for (let g = 0; g + 3 < groupStarts.length; g++) {
      const nonEmpty = groupEnds[g]! > groupStarts[g]! && groupEnds[g + 3]! > groupStarts[g + 3]!;
      if (!nonEmpty || !isOctet(url, groupStarts[g + 1]!, groupEnds[g + 1]!) || !isOctet(url, groupStarts[g + 2]!, groupEnds[g + 2]!)) continue;
      const fourth = g + 3;
      if (groupStarts[fourth]! < copied) continue; // already replaced by an earlier window
      out += url.slice(copied, groupStarts[fourth]) + 'X';
      copied = groupEnds[fourth]!;
    }
  }
  return copied === 0 ? url : out + url.slice(copied);
}
