import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { PolicyErrorCode, Problem } from './errors.ts';
import type { SourceLocation } from './types.ts';

/** A path into a YAML document, as ajv and our checks name it: keys and array indexes. */
export type YamlPath = (string | number)[];

/** One parsed policy file that can map any value path back to `line:col`. */
export interface SourceFile {
  /** Path relative to the policy directory. */
  file: string;
  doc: Document.Parsed;
  /** The plain JS value (null for an empty file). */
  value: unknown;
  /** Location of the value at `path` (or of its key, with `key: true`); falls back to the
   * nearest enclosing node that exists. */
  locate(path: YamlPath, key?: boolean): SourceLocation;
  /** Record a problem at `path`. */
  problem(path: YamlPath, code: PolicyErrorCode, message: string, key?: boolean): Problem;
}

/** Parse one YAML policy file, keeping node ranges and a line counter. YAML syntax errors are
 * appended to `problems`. */
export function parseSource(file: string, text: string, problems: Problem[]): SourceFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  for (const e of doc.errors) {
    const pos = lineCounter.linePos(e.pos[0]);
    const code: PolicyErrorCode = e.code === 'DUPLICATE_KEY' ? 'ERR_POLICY_DUPLICATE_KEY' : 'ERR_POLICY_YAML';
    problems.push({ file, line: pos.line, col: pos.col, code, message: e.message.split('\n')[0] });
  }
  const at = (offset: number): SourceLocation => {
    const pos = lineCounter.linePos(offset);
    return { file, line: pos.line, col: pos.col };
  };
  const locate = (path: YamlPath, key = false): SourceLocation => {
    let node: Node | null | undefined = doc.contents as Node | null;
    let last: Node | null | undefined = node;
    let keyNode: Node | null = null;
    for (const seg of path) {
      keyNode = null;
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) break;
        keyNode = pair.key as Node;
        node = pair.value as Node | null;
      } else if (isSeq(node) && typeof seg === 'number') {
        node = node.items[seg] as Node | null;
      } else break;
      if (!node) break;
      last = node;
    }
    const target = key && keyNode ? keyNode : (node ?? keyNode ?? last);
    return at(target?.range?.[0] ?? 0);
  };
  let value: unknown = null;
  try {
    value = doc.errors.length === 0 ? doc.toJS({ maxAliasCount: 100 }) : null;
  } catch (err) {
    problems.push({ file, line: 1, col: 1, code: 'ERR_POLICY_YAML', message: (err as Error).message });
  }
  return {
    file,
    doc,
    value,
    locate,
    problem(path, code, message, key = false) {
      const loc = locate(path, key);
      const p: Problem = { file, line: loc.line, col: loc.col, code, message };
      problems.push(p);
      return p;
    },
  };
}
