/** Minimal parsers for the Postfix and Dovecot snippet formats, enough to read their wiring. */

/** Postfix main.cf: `name = value` lines (continuation lines start with whitespace). Last wins. */
export function parseMainCf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (/^\s*(#|$)/.test(line)) continue;
    if (/^\s/.test(line) && last) {
      out.set(last, `${out.get(last)} ${line.trim()}`);
      continue;
    }
    const m = /^(\w+)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new Error(`main.cf: unparsable line: ${line}`);
    out.set(m[1], m[2].trim());
    last = m[1];
  }
  return out;
}

/** One master.cf service: the 8 fields and its `-o name=value` overrides. */
export interface MasterService {
  service: string;
  type: string;
  command: string;
  overrides: Map<string, string>;
}

/** Postfix master.cf: service lines, with `-o` overrides on indented continuation lines. */
export function parseMasterCf(text: string): MasterService[] {
  const out: MasterService[] = [];
  for (const line of text.split('\n')) {
    if (/^\s*(#|$)/.test(line)) continue;
    if (/^\s/.test(line)) {
      const cur = out.at(-1);
      if (!cur) throw new Error(`master.cf: continuation before any service: ${line}`);
      for (const m of line.matchAll(/-o\s+(\w+)=(\S*)/g)) cur.overrides.set(m[1], m[2]);
      continue;
    }
    const f = line.trim().split(/\s+/);
    if (f.length < 8) throw new Error(`master.cf: a service line needs 8 fields: ${line}`);
    out.push({ service: f[0], type: f[1], command: f[7], overrides: new Map() });
  }
  return out;
}

/** A Dovecot config section: settings and nested sections (`service lmtp { inet_listener lmtp { … } }`). */
export interface DovecotSection {
  settings: Map<string, string>;
  sections: { type: string; name: string; body: DovecotSection }[];
}

/** Dovecot config: `key = value`, `type [name] {` … `}`. */
export function parseDovecotConf(text: string): DovecotSection {
  const root: DovecotSection = { settings: new Map(), sections: [] };
  const stack = [root];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const top = stack.at(-1) as DovecotSection;
    let m: RegExpExecArray | null;
    if ((m = /^(\S+)(?:\s+(\S+))?\s*\{$/.exec(line))) {
      const body: DovecotSection = { settings: new Map(), sections: [] };
      top.sections.push({ type: m[1], name: m[2] ?? '', body });
      stack.push(body);
    } else if (line === '}') {
      if (stack.length === 1) throw new Error('dovecot conf: unbalanced }');
      stack.pop();
    } else if ((m = /^(\S+)\s*=\s*(.*)$/.exec(line))) {
      top.settings.set(m[1], m[2]);
    } else throw new Error(`dovecot conf: unparsable line: ${raw}`);
  }
  if (stack.length !== 1) throw new Error('dovecot conf: unclosed section');
  return root;
}

/** The `address`/`port` of `service SERVICE { inet_listener LISTENER { … } }`, if declared. */
export function dovecotListener(conf: DovecotSection, service: string, listener: string): { address?: string; port?: number } | undefined {
  const s = conf.sections.find((x) => x.type === 'service' && x.name === service);
  const l = s?.body.sections.find((x) => x.type === 'inet_listener' && x.name === listener);
  if (!l) return undefined;
  const port = l.body.settings.get('port');
  return { address: l.body.settings.get('address') ?? conf.settings.get('listen'), port: port === undefined ? undefined : Number(port) };
}

/** Split `host:port`. */
export function hostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(addr.slice(i + 1)) };
}
