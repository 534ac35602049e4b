import type { PolicyErrorCode, Problem } from './errors.ts';

/** One user directory row as the reader hands it out. The object is reused for every row (no
 * allocation per row at a million rows): copy what you keep. */
export interface DirectoryRow {
  address: string;
  /** Explicit shard id, or '' when the row leaves placement to rules and hashing. */
  shard: string;
  /** Values of the requested attribute keys, in the order asked for. */
  attrs: (string | undefined)[];
  line: number;
  addressCol: number;
  shardCol: number;
}

/** Split one CSV line (RFC 4180 quoting) into fields and their 1-based start columns. */
function splitCsv(line: string, fields: string[], cols: number[]): void {
  fields.length = 0;
  cols.length = 0;
  if (!line.includes('"')) {
    let start = 0;
    for (;;) {
      const comma = line.indexOf(',', start);
      cols.push(start + 1);
      if (comma < 0) {
        fields.push(line.slice(start).trim());
        return;
      }
      fields.push(line.slice(start, comma).trim());
      start = comma + 1;
    }
  }
  let i = 0;
  while (i <= line.length) {
    cols.push(i + 1);
    let value = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) {
          value += line.slice(i);
          i = line.length;
          break;
        }
        value += line.slice(i, q);
        if (line[q + 1] === '"') {
          value += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      const comma = line.indexOf(',', i);
      i = comma < 0 ? line.length + 1 : comma + 1;
    } else {
      const comma = line.indexOf(',', i);
      const end = comma < 0 ? line.length : comma;
      value = line.slice(i, end).trim();
      i = end + 1;
    }
    fields.push(value);
  }
}

/**
 * Read a user directory (CSV with a header row naming `address`, optional `shard` and any
 * attribute columns; or JSONL objects `{"address", "shard"?, ...attributes}` with attributes
 * also accepted under `"attributes"`). Blank lines and lines starting with `#` are skipped.
 * Calls `onRow` for each row; format errors go to `problems`.
 */
export function readDirectory(
  file: string,
  text: string,
  attrKeys: string[],
  onRow: (row: DirectoryRow) => void,
  problems: Problem[],
): void {
  const row: DirectoryRow = { address: '', shard: '', attrs: attrKeys.map(() => undefined), line: 0, addressCol: 1, shardCol: 1 };
  const bad = (line: number, col: number, code: PolicyErrorCode, message: string) => problems.push({ file, line, col, code, message });
  const jsonl = /\.(jsonl|ndjson)$/i.test(file);
  let pos = 0;
  let lineNo = 0;
  let header: string[] | null = null;
  let addrIdx = -1;
  let shardIdx = -1;
  let attrIdx: number[] = [];
  const fields: string[] = [];
  const cols: number[] = [];
  while (pos < text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    let line = text.slice(pos, nl);
    pos = nl + 1;
    lineNo++;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.length === 0 || line.charCodeAt(0) === 35 /* # */ || line.trim() === '') continue;
    if (jsonl) {
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(line) as Record<string, unknown>;
      } catch (err) {
        bad(lineNo, 1, 'ERR_POLICY_DIRECTORY', `invalid JSON: ${(err as Error).message}`);
        continue;
      }
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj) || typeof obj.address !== 'string') {
        bad(lineNo, 1, 'ERR_POLICY_DIRECTORY', 'each line must be an object with a string "address"');
        continue;
      }
      if (obj.shard !== undefined && typeof obj.shard !== 'string') {
        bad(lineNo, 1, 'ERR_POLICY_WRONG_TYPE', 'wrong type for "shard": expected string');
        continue;
      }
      const nested = obj.attributes !== null && typeof obj.attributes === 'object' ? (obj.attributes as Record<string, unknown>) : undefined;
      row.address = obj.address.trim();
      row.shard = (obj.shard as string | undefined)?.trim() ?? '';
      for (let k = 0; k < attrKeys.length; k++) {
        const v = obj[attrKeys[k]] ?? nested?.[attrKeys[k]];
        row.attrs[k] = v === undefined || v === null ? undefined : String(v);
      }
      row.line = lineNo;
      row.addressCol = 1;
      row.shardCol = 1;
      onRow(row);
      continue;
    }
    splitCsv(line, fields, cols);
    if (!header) {
      header = fields.map((f) => f.toLowerCase());
      addrIdx = header.indexOf('address');
      shardIdx = header.indexOf('shard');
      attrIdx = attrKeys.map((k) => header!.indexOf(k.toLowerCase()));
      if (addrIdx < 0) {
        bad(lineNo, 1, 'ERR_POLICY_DIRECTORY', 'the header row must name an "address" column (e.g. address,shard,region)');
        return;
      }
      continue;
    }
    if (fields.length !== header.length) {
      bad(lineNo, 1, 'ERR_POLICY_DIRECTORY', `expected ${header.length} fields as in the header, found ${fields.length}`);
      continue;
    }
    row.address = fields[addrIdx];
    row.shard = shardIdx >= 0 ? fields[shardIdx] : '';
    for (let k = 0; k < attrIdx.length; k++) {
      const v = attrIdx[k] >= 0 ? fields[attrIdx[k]] : undefined;
      row.attrs[k] = v === '' ? undefined : v;
    }
    row.line = lineNo;
    row.addressCol = cols[addrIdx];
    row.shardCol = shardIdx >= 0 ? cols[shardIdx] : 1;
    onRow(row);
  }
}
