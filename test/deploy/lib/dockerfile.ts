/** A Dockerfile instruction: keyword and its arguments (continuations joined). */
export interface Instruction {
  keyword: string;
  args: string;
}

/** Parse a Dockerfile into instructions: comments dropped, `\` continuations joined. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    const line = raw.trimEnd();
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    if (full === '') continue;
    const m = /^(\w+)\s+(.*)$/s.exec(full);
    if (!m) throw new Error(`Dockerfile: unparsable line: ${full}`);
    out.push({ keyword: m[1].toUpperCase(), args: m[2].replace(/\s+/g, ' ') });
  }
  return out;
}

/** Folders the image must never contain. */
const FORBIDDEN = ['test', 'bench', 'docs', '.git', 'node_modules'];

/** Content rules for deploy/Dockerfile (docker cannot run here, so the file is checked as text). */
export function checkDockerfile(text: string): string[] {
  const problems: string[] = [];
  const ins = parseDockerfile(text);
  const froms = ins.filter((i) => i.keyword === 'FROM');
  if (froms.length < 2) problems.push('Dockerfile: expected a multi-stage build (at least two FROM)');
  for (const f of froms) if (!/^node:24-bookworm-slim(\s|$)/.test(f.args)) problems.push(`Dockerfile: FROM ${f.args}: base must be node:24-bookworm-slim`);
  if (!ins.some((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args) && /--omit=dev\b/.test(i.args))) problems.push('Dockerfile: dependencies must come from `npm ci --omit=dev`');
  const users = ins.filter((i) => i.keyword === 'USER');
  const finalStage = ins.slice(ins.lastIndexOf(froms.at(-1) as Instruction));
  const lastUser = finalStage.filter((i) => i.keyword === 'USER').at(-1)?.args;
  if (!lastUser || !/^10001(:10001)?$/.test(lastUser)) problems.push(`Dockerfile: the final stage must run as USER 10001 (got ${lastUser ?? users.at(-1)?.args ?? 'none'})`);
  const hc = finalStage.find((i) => i.keyword === 'HEALTHCHECK')?.args ?? '';
  if (!/\/healthz/.test(hc) || !/9464/.test(hc) || !/\bnode\b/.test(hc)) problems.push('Dockerfile: HEALTHCHECK must ask /healthz on the metrics port 9464 with node');
  // One variable for the sidecar and the control plane, defaulting to 9464 in the image and in the command.
  if (!/process\.env\.MAILMESH_HEALTH_PORT\s*\|\|\s*9464\b/.test(hc)) problems.push('Dockerfile: HEALTHCHECK must read the port from MAILMESH_HEALTH_PORT (default 9464)');
  const envPort = finalStage.filter((i) => i.keyword === 'ENV').map((i) => /\bMAILMESH_HEALTH_PORT=(\S+)/.exec(i.args)?.[1]).find((v) => v !== undefined);
  if (envPort !== '9464') problems.push(`Dockerfile: the final stage must set ENV MAILMESH_HEALTH_PORT=9464 (got ${envPort ?? 'none'})`);
  if (/\bcurl\b|\bwget\b/.test(hc)) problems.push('Dockerfile: HEALTHCHECK must not need curl/wget (not in the slim image)');
  const entry = finalStage.find((i) => i.keyword === 'ENTRYPOINT')?.args;
  if (entry === undefined || JSON.stringify(JSON.parse(entry)) !== JSON.stringify(['node', 'cli/mailmesh.ts'])) problems.push(`Dockerfile: ENTRYPOINT must be ["node", "cli/mailmesh.ts"] (got ${entry})`);
  for (const c of ins.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD')) {
    const parts = c.args.split(' ').filter((p) => !p.startsWith('--'));
    const sources = parts.slice(0, -1);
    if (c.args.includes('--from=')) continue;
    for (const s of sources) {
      const top = s.replace(/^\.\//, '').split('/')[0];
      if (s === '.' || s === './' || top === '*') problems.push(`Dockerfile: ${c.keyword} ${c.args} copies the whole context`);
      if (FORBIDDEN.includes(top)) problems.push(`Dockerfile: ${c.keyword} ${c.args} copies ${top}/ into the image`);
    }
  }
  return problems;
}

/** The build context leaves out tests, benchmarks, git, local modules and key files. */
export function checkDockerignore(text: string): string[] {
  const lines = new Set(text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
  const missing = ['.git', 'node_modules', 'test', 'bench', '**/*.key'].filter((p) => !lines.has(p));
  return missing.map((p) => `.dockerignore: must exclude ${p}`);
}

/** The HEALTHCHECK's exec-form command (`CMD ["node", "-e", "…"]`) as an argv, to run it for real. */
export function healthCheckCommand(text: string): string[] {
  const hc = parseDockerfile(text).find((i) => i.keyword === 'HEALTHCHECK')?.args ?? '';
  const m = /\bCMD\s+(\[.*\])\s*$/.exec(hc);
  if (!m) throw new Error(`Dockerfile: HEALTHCHECK has no exec-form CMD: ${hc}`);
  return JSON.parse(m[1]) as string[];
}
