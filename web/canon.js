// canon.js - the audit chain recomputed in the browser (docs/audit.md):
//   entry_hash = hex(SHA-256(json.dumps(data, separators=(",",":"),
//                sort_keys=True)))   with Python's ensure_ascii escaping
//   data = {action, detail, machine_id, new_state, operator_cn,
//           prev_hash, prev_state, timestamp}
// prev_hash of the first entry is 64 zeros, of every other the previous
// entry's entry_hash.  WebCrypto computes the digests.

import { get } from './api.js';

export const HASHED = ['action', 'detail', 'machine_id', 'new_state', 'operator_cn', 'prev_hash', 'prev_state', 'timestamp'];
const GENESIS = '0'.repeat(64);

// JSON.stringify already matches Python for ASCII (the same short escapes
// \b \f \n \r \t, \u00xx in lowercase for other control characters, no
// escaping of '/'); ensure_ascii then escapes every UTF-16 code unit
// above 0x7f as \uxxxx (surrogate pairs stay pairs).
export function canonical(entry) {
  const parts = HASHED.map((k) => {
    const v = entry[k];
    return JSON.stringify(k) + ':' + (v === null || v === undefined ? 'null' : JSON.stringify(v));
  });
  return ('{' + parts.join(',') + '}').replace(/[\u0080-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

export async function sha256hex(text) {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

// Walk the whole log oldest first (after_id cursor, 200 per request).
// Returns { valid, entries, head, broken: entry|null, error }.
export async function verifyChain(onProgress, signal) {
  if (!window.crypto || !crypto.subtle) throw new Error('WebCrypto is unavailable: the dashboard must be served over HTTPS (or from localhost)');
  let after = 0, prev = GENESIS, n = 0;
  for (;;) {
    if (signal && signal.aborted) throw new Error('stopped');
    const { data } = await get(`/api/v1/audit?after_id=${after}&per_page=200`, { remember: false });
    for (const e of data) {
      if (e.prev_hash !== prev) return { valid: false, entries: n, head: prev, broken: e, error: `prev_hash mismatch at entry id=${e.id}` };
      const h = await sha256hex(canonical(e));
      if (h !== e.entry_hash) return { valid: false, entries: n, head: prev, broken: e, error: `entry_hash mismatch at entry id=${e.id}`, computed: h };
      prev = e.entry_hash;
      after = e.id;
      n++;
    }
    if (onProgress) onProgress(n);
    if (data.length < 200) return { valid: true, entries: n, head: n ? prev : null, broken: null, error: null };
  }
}
