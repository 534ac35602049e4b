import { dirname } from 'node:path';
import { dovecotListener, hostPort, parseMainCf, parseMasterCf, type DovecotSection } from './conf-parsers.ts';
import type { K8sObject } from './yaml-docs.ts';

/**
 * Wiring checks over parsed deployment files. Each returns a list of problems (empty = fine), so a
 * test can assert both that the real files pass and that a deliberately broken copy is caught.
 */

/** The sidecar config, loosely typed (docs/internals.md). */
export interface SidecarConfigDoc {
  tlsDir?: string;
  stateDir?: string;
  caBundle?: string;
  joinTokenFile?: string;
  mode?: string;
  listen: Record<string, string>;
  backends: Record<string, string>;
  publicTls?: { cert: string; key: string };
  [k: string]: unknown;
}

interface Probe {
  httpGet?: { path?: string; port?: number | string };
  tcpSocket?: { port?: number | string };
}
interface Container {
  name: string;
  image?: string;
  args?: string[];
  env?: { name: string; valueFrom?: { fieldRef?: { fieldPath?: string } } }[];
  ports?: { name?: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: { name: string; emptyDir?: unknown; configMap?: { name: string }; secret?: { secretName: string }; persistentVolumeClaim?: { claimName: string } }[];
  serviceAccountName?: string;
}
/** A workload's pod template. */
interface Pods {
  workload: K8sObject;
  labels: Record<string, string>;
  spec: PodSpec;
}

type Labels = Record<string, string>;
const matches = (selector: Labels | undefined, labels: Labels) =>
  selector !== undefined && Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Pod templates of every Deployment and StatefulSet. */
export function podTemplates(objects: K8sObject[]): Pods[] {
  return objects
    .filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')
    .map((o) => {
      const t = (o.spec as { template: { metadata: { labels: Labels }; spec: PodSpec } }).template;
      return { workload: o, labels: t.metadata?.labels ?? {}, spec: t.spec };
    });
}

/** Keys of the sidecar config that docs/internals.md does not show but the loader requires. */
export const SIDECAR_KEYS_BEYOND_INTERNALS = ['caBundle'];

/** The sidecar ConfigMap uses exactly the documented format: no unknown keys, every listener
 * and (in postfix mode) every backend of the reference present. */
export function checkSidecarConfigFormat(cfg: SidecarConfigDoc, reference: SidecarConfigDoc): string[] {
  const problems: string[] = [];
  for (const k of Object.keys(cfg)) {
    if (!(k in reference) && !SIDECAR_KEYS_BEYOND_INTERNALS.includes(k)) problems.push(`sidecar config: key "${k}" is not in docs/internals.md`);
  }
  for (const group of ['listen', 'backends'] as const) {
    for (const k of Object.keys(cfg[group] ?? {})) if (!(k in reference[group])) problems.push(`sidecar config: ${group}.${k} is not in docs/internals.md`);
  }
  for (const k of Object.keys(reference.listen)) if (!cfg.listen?.[k]) problems.push(`sidecar config: listen.${k} missing`);
  if (cfg.mode === 'postfix') {
    for (const k of ['postfix', 'lmtp', 'imap', 'pop3']) if (!cfg.backends?.[k]) problems.push(`sidecar config: backends.${k} missing (needed in postfix mode)`);
  }
  for (const k of ['shard', 'node', 'controlPlane', 'stateDir', 'tlsDir']) if (!cfg[k]) problems.push(`sidecar config: ${k} missing`);
  return problems;
}

/** The Postfix and Dovecot snippets talk to the ports the sidecar listens on, and vice versa. */
export function checkSnippetPorts(cfg: SidecarConfigDoc, files: { mainCf: string; masterCf: string; dovecot: DovecotSection }): string[] {
  const problems: string[] = [];
  const main = parseMainCf(files.mainCf);
  const socketmap = hostPort(cfg.listen.socketmap);
  for (const [param, table] of [['transport_maps', 'transport'], ['relay_recipient_maps', 'recipients']]) {
    const want = `socketmap:inet:${socketmap.host}:${socketmap.port}:${table}`;
    if (main.get(param) !== want) problems.push(`main.cf: ${param} = ${main.get(param)}, expected ${want} (sidecar listen.socketmap)`);
  }
  const filter = hostPort(cfg.listen.filter);
  const cf = /^([\w-]+):\[([^\]]+)\]:(\d+)$/.exec(main.get('content_filter') ?? '');
  if (!cf || cf[2] !== filter.host || Number(cf[3]) !== filter.port) {
    problems.push(`main.cf: content_filter = ${main.get('content_filter')} does not reach the sidecar filter ${cfg.listen.filter}`);
  }
  const master = parseMasterCf(files.masterCf);
  if (cf && !master.some((s) => s.service === cf[1] && s.type === 'unix' && s.command === 'smtp')) {
    problems.push(`master.cf: no "${cf[1]} unix ... smtp" transport for content_filter`);
  }
  // TCP: the service is named by its address; a Unix socket (`unix:…/private/NAME`): by NAME.
  const postfixBackend: string = cfg.backends.postfix ?? '';
  const reinject = postfixBackend.startsWith('unix:')
    ? master.find((s) => s.type === 'unix' && s.command === 'smtpd' && /\/(private|public)\/[^/]+$/.test(postfixBackend) && postfixBackend.endsWith(`/${s.service}`))
    : master.find((s) => s.type === 'inet' && s.command === 'smtpd' && s.service === postfixBackend);
  if (!reinject) problems.push(`master.cf: no smtpd on ${cfg.backends.postfix} (sidecar backends.postfix)`);
  else if (reinject.overrides.get('content_filter') !== '') problems.push('master.cf: the re-injection smtpd must clear content_filter (-o content_filter=) or signed mail loops');
  for (const [backend, service, listener] of [['lmtp', 'lmtp', 'lmtp'], ['imap', 'imap-login', 'imap'], ['pop3', 'pop3-login', 'pop3']]) {
    const l = dovecotListener(files.dovecot, service, listener);
    const want = hostPort(cfg.backends[backend]);
    if (!l || l.port !== want.port || l.address !== want.host) {
      problems.push(`dovecot: ${service}/${listener} listens on ${l?.address}:${l?.port}, sidecar backends.${backend} is ${cfg.backends[backend]}`);
    }
  }
  const trusted = files.dovecot.settings.get('login_trusted_networks') ?? '';
  const imapHost = hostPort(cfg.backends.imap).host;
  if (!trusted.split(/\s+/).some((n) => n === `${imapHost}/32` || n === imapHost)) {
    problems.push(`dovecot: login_trusted_networks (${trusted}) must include ${imapHost} so the sidecar's client address is believed`);
  }
  const tlsDir = cfg.tlsDir ?? '';
  for (const [what, path] of [
    ['main.cf smtpd_tls_cert_file', main.get('smtpd_tls_cert_file')],
    ['main.cf smtpd_tls_key_file', main.get('smtpd_tls_key_file')],
    ['dovecot ssl_cert', files.dovecot.settings.get('ssl_cert')?.replace(/^</, '')],
    ['dovecot ssl_key', files.dovecot.settings.get('ssl_key')?.replace(/^</, '')],
  ]) {
    if (!path || dirname(path) !== tlsDir) problems.push(`${what} = ${path}: must be a file the sidecar writes in tlsDir ${tlsDir}`);
  }
  return problems;
}

function resolvePort(c: Container, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port;
  return c.ports?.find((p) => p.name === port)?.containerPort;
}

function mountOf(c: Container, spec: PodSpec, path: string) {
  const m = c.volumeMounts?.find((v) => v.mountPath === path);
  return m ? spec.volumes?.find((v) => v.name === m.name) : undefined;
}

/** Liveness is an httpGet on /healthz and readiness on /readyz, both on the metrics port (the
 * health server of common/health-server.ts, which the sidecar and the control plane both run). */
function checkHealthProbes(id: string, c: Container, metricsPort: number, key: string): string[] {
  const problems: string[] = [];
  if (!c.ports?.some((p) => p.containerPort === metricsPort)) problems.push(`${id}: ${c.name} serves ${key} on ${metricsPort} but declares no containerPort ${metricsPort}`);
  for (const [probe, path] of [['livenessProbe', '/healthz'], ['readinessProbe', '/readyz']] as const) {
    const p = c[probe]?.httpGet;
    if (!p) problems.push(`${id}: ${c.name} ${probe} must be an httpGet on ${path}`);
    else {
      if (p.path !== path) problems.push(`${id}: ${c.name} ${probe} path ${p.path}, expected ${path}`);
      if (resolvePort(c, p.port) !== metricsPort) problems.push(`${id}: ${c.name} ${probe} port ${p.port} is not ${key} ${metricsPort}`);
    }
  }
  return problems;
}

/** The control plane config, loosely typed (control-plane/config.ts). */
export interface ControlPlaneConfigDoc {
  listen: string;
  metrics?: string;
  [k: string]: unknown;
}

/** The control plane pod: its config's `listen` and `metrics` ports are declared container ports,
 * `metrics` is bound on a pod address (the kubelet probes the pod IP, never its loopback), and
 * the probes are HTTP /healthz and /readyz on the metrics port. */
export function checkControlPlanePod(pods: Pods, cfg: ControlPlaneConfigDoc): string[] {
  const id = `${pods.workload.kind}/${pods.workload.metadata.name}`;
  const c = pods.spec.containers.find((x) => x.name === 'control-plane');
  if (!c) return [`${id}: needs a container named control-plane`];
  const problems: string[] = [];
  const listen = hostPort(cfg.listen);
  if (!c.ports?.some((p) => p.containerPort === listen.port)) problems.push(`${id}: control-plane listens on ${cfg.listen} but declares no containerPort ${listen.port}`);
  if (!cfg.metrics) return [...problems, `${id}: control-plane config has no "metrics" address: nothing serves /healthz and /readyz for the probes`];
  const metrics = hostPort(cfg.metrics);
  if (metrics.host.startsWith('127.') || metrics.host === 'localhost' || metrics.host === '[::1]') problems.push(`${id}: control-plane metrics ${cfg.metrics} is loopback only: the kubelet and Prometheus reach the pod IP`);
  if (metrics.port === listen.port) problems.push(`${id}: control-plane metrics and listen share port ${listen.port}`);
  problems.push(...checkHealthProbes(id, c, metrics.port, 'metrics'));
  return problems;
}

/** Within a mail pod: shared TLS volume, container ports, probes and config paths agree with the
 * sidecar config. `entrypoints` are the Postfix/Dovecot entrypoint scripts (they name the paths
 * they read). */
export function checkMailPod(pods: Pods, cfg: SidecarConfigDoc, entrypoints: { postfix: string; dovecot: string }): string[] {
  const problems: string[] = [];
  const id = `${pods.workload.kind}/${pods.workload.metadata.name}`;
  const get = (name: string) => pods.spec.containers.find((c) => c.name === name);
  const sidecar = get('sidecar');
  const postfix = get('postfix');
  const dovecot = get('dovecot');
  if (!sidecar || !postfix || !dovecot) return [`${id}: needs containers sidecar, postfix and dovecot`];

  // One TLS volume (an emptyDir) at tlsDir in all three containers.
  const tlsDir = cfg.tlsDir ?? '';
  const tlsVolumes = [sidecar, postfix, dovecot].map((c) => c.volumeMounts?.find((m) => m.mountPath === tlsDir)?.name);
  if (tlsVolumes.some((v) => v === undefined)) problems.push(`${id}: tlsDir ${tlsDir} must be mounted in sidecar, postfix and dovecot (got ${tlsVolumes.join(', ')})`);
  else if (new Set(tlsVolumes).size !== 1) problems.push(`${id}: tlsDir is mounted from different volumes: ${tlsVolumes.join(', ')}`);
  else if (!pods.spec.volumes?.find((v) => v.name === tlsVolumes[0])?.emptyDir) problems.push(`${id}: the TLS volume must be a pod-local emptyDir`);

  // Every listener that is not loopback-only is a declared container port.
  for (const [name, addr] of Object.entries(cfg.listen)) {
    const { host, port } = hostPort(addr);
    if (host.startsWith('127.')) continue;
    if (!sidecar.ports?.some((p) => p.containerPort === port)) problems.push(`${id}: sidecar listens on ${name} ${addr} but declares no containerPort ${port}`);
  }
  problems.push(...checkHealthProbes(id, sidecar, hostPort(cfg.listen.metrics).port, 'listen.metrics'));
  for (const [c, backend] of [[postfix, 'postfix'], [dovecot, 'lmtp']] as const) {
    const port = resolvePort(c, c.readinessProbe?.tcpSocket?.port);
    if (port !== hostPort(cfg.backends[backend]).port) problems.push(`${id}: ${c.name} readiness probe port ${port} is not backends.${backend} ${cfg.backends[backend]}`);
  }

  // Every path in the sidecar config lies under a sidecar mount.
  const paths = [cfg.stateDir, cfg.caBundle, cfg.joinTokenFile, cfg.publicTls?.cert, cfg.publicTls?.key].filter((p): p is string => !!p);
  for (const p of paths) {
    if (!sidecar.volumeMounts?.some((m) => p === m.mountPath || p.startsWith(`${m.mountPath}/`))) problems.push(`${id}: sidecar config path ${p} is on no volume mount`);
  }
  // The --config file is what render-config writes, on a shared volume.
  const cfgArg = sidecar.args?.[sidecar.args.indexOf('--config') + 1];
  const render = pods.spec.initContainers?.find((c) => c.name === 'render-config');
  if (!cfgArg || !render) problems.push(`${id}: sidecar needs --config and a render-config init container`);
  else {
    const v = mountOf(sidecar, pods.spec, dirname(cfgArg));
    const w = render.volumeMounts?.find((m) => v && m.name === v.name);
    if (!v || !w || !render.args?.join(' ').includes(`${w.mountPath}/${cfgArg.split('/').pop()}`)) {
      problems.push(`${id}: render-config does not write ${cfgArg} on a volume the sidecar mounts`);
    }
    for (const e of render.env ?? []) {
      const m = /^metadata\.labels\['(.+)'\]$/.exec(e.valueFrom?.fieldRef?.fieldPath ?? '');
      if (m && !(m[1] in pods.labels)) problems.push(`${id}: render-config reads pod label ${m[1]}, which the pod does not have`);
    }
  }
  // The entrypoints read their snippets where the ConfigMaps are mounted.
  for (const [c, script, cm] of [[postfix, entrypoints.postfix, 'mailmesh-postfix'], [dovecot, entrypoints.dovecot, 'mailmesh-dovecot']] as const) {
    const mount = c.volumeMounts?.find((m) => pods.spec.volumes?.find((v) => v.name === m.name)?.configMap?.name.startsWith(cm));
    if (!mount || !script.includes(mount.mountPath)) problems.push(`${id}: ${c.name} entrypoint does not read the ${cm} ConfigMap mount (${mount?.mountPath})`);
  }
  return problems;
}

/** Operator-provided objects referenced by name but never stored in git (keys, tokens, bundles). */
export const EXTERNAL = new Set(['Secret/mailmesh-ca', 'Secret/mailmesh-join-tokens', 'Secret/mailmesh-public-tls', 'ConfigMap/mailmesh-trust-bundle']);

/** Every reference resolves to a rendered object or to a documented operator-provided one, and no
 * Secret (key material) is in the manifests at all. */
export function checkReferences(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  const have = new Set(objects.map((o) => `${o.kind}/${o.metadata.name}`));
  const need = (ref: string, from: string) => {
    if (!have.has(ref) && !EXTERNAL.has(ref)) problems.push(`${from}: refers to ${ref}, which is neither rendered nor operator-provided`);
  };
  for (const o of objects) if (o.kind === 'Secret') problems.push(`Secret/${o.metadata.name}: secrets must not be kept in the manifests`);
  for (const p of podTemplates(objects)) {
    const from = `${p.workload.kind}/${p.workload.metadata.name}`;
    for (const v of p.spec.volumes ?? []) {
      if (v.configMap) need(`ConfigMap/${v.configMap.name}`, from);
      if (v.secret) need(`Secret/${v.secret.secretName}`, from);
      if (v.persistentVolumeClaim) need(`PersistentVolumeClaim/${v.persistentVolumeClaim.claimName}`, from);
    }
    for (const c of [...p.spec.containers, ...(p.spec.initContainers ?? [])]) {
      for (const m of c.volumeMounts ?? []) {
        const claims = ((p.workload.spec as { volumeClaimTemplates?: { metadata: { name: string } }[] }).volumeClaimTemplates ?? []).map((t) => t.metadata.name);
        if (!p.spec.volumes?.some((v) => v.name === m.name) && !claims.includes(m.name)) problems.push(`${from}: container ${c.name} mounts unknown volume ${m.name}`);
      }
    }
    if (p.spec.serviceAccountName) need(`ServiceAccount/${p.spec.serviceAccountName}`, from);
    const serviceName = (p.workload.spec as { serviceName?: string }).serviceName;
    if (serviceName) {
      const svc = objects.find((o) => o.kind === 'Service' && o.metadata.name === serviceName);
      if (!svc || (svc.spec as { clusterIP?: string }).clusterIP !== 'None') problems.push(`${from}: serviceName ${serviceName} must be a headless Service`);
    }
  }
  return problems;
}

/** Selectors select what they should: workloads their own pods, Services and PDBs existing pods
 * (a headless Service and a PDB exactly one workload), named target ports exist. */
export function checkSelectors(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  const pods = podTemplates(objects);
  for (const p of pods) {
    const sel = (p.workload.spec as { selector?: { matchLabels?: Labels } }).selector?.matchLabels;
    if (!matches(sel, p.labels)) problems.push(`${p.workload.kind}/${p.workload.metadata.name}: selector does not match its pod template labels`);
  }
  for (const o of objects) {
    const id = `${o.kind}/${o.metadata.name}`;
    if (o.kind === 'Service') {
      const spec = o.spec as { selector?: Labels; clusterIP?: string; ports?: { targetPort?: string | number }[] };
      const hit = pods.filter((p) => matches(spec.selector, p.labels));
      if (hit.length === 0) problems.push(`${id}: selector matches no pods`);
      if (spec.clusterIP === 'None' && hit.length > 1) problems.push(`${id}: headless Service selects pods of ${hit.length} workloads (one shard each)`);
      for (const port of spec.ports ?? []) {
        if (typeof port.targetPort !== 'string') continue;
        for (const p of hit) if (!p.spec.containers.some((c) => c.ports?.some((cp) => cp.name === port.targetPort))) problems.push(`${id}: targetPort ${port.targetPort} is not a port of ${p.workload.metadata.name}`);
      }
    }
    if (o.kind === 'PodDisruptionBudget') {
      const sel = (o.spec as { selector?: { matchLabels?: Labels } }).selector?.matchLabels;
      const hit = pods.filter((p) => matches(sel, p.labels));
      if (hit.length !== 1) problems.push(`${id}: selects pods of ${hit.length} workloads, expected exactly 1`);
    }
  }
  return problems;
}

interface NetPolPeer {
  podSelector?: { matchLabels?: Labels };
  namespaceSelector?: unknown;
  ipBlock?: unknown;
}
interface NetPolRule {
  from?: NetPolPeer[];
  ports?: { port?: number | string }[];
}

/** Network policies: mesh ports talk only to mesh ports, the control plane port only to mesh pods,
 * the public mail ports stay open, the metrics ports of sidecars and control plane are reachable
 * from the monitoring namespace only, and every mail and control-plane pod is covered. */
export function checkNetworkPolicies(
  objects: K8sObject[],
  opts: { meshLabel: Labels; meshPort: number; controlPlanePort: number; publicPorts: number[]; scrape?: { namespace: Labels; sidecarPort: number; controlPlanePort: number } },
): string[] {
  const problems: string[] = [];
  const pods = podTemplates(objects);
  const pols = objects.filter((o) => o.kind === 'NetworkPolicy');
  const onlyMesh = (rule: NetPolRule) =>
    (rule.from ?? []).length > 0 && (rule.from ?? []).every((f) => !f.namespaceSelector && !f.ipBlock && matches(f.podSelector?.matchLabels, opts.meshLabel) && Object.keys(f.podSelector?.matchLabels ?? {}).some((k) => k in opts.meshLabel));
  const rulesFor = (p: (typeof pods)[number]) =>
    pols
      .filter((n) => matches((n.spec as { podSelector?: { matchLabels?: Labels } }).podSelector?.matchLabels, p.labels) && ((n.spec as { policyTypes?: string[] }).policyTypes ?? []).includes('Ingress'))
      .flatMap((n) => ((n.spec as { ingress?: NetPolRule[] }).ingress ?? []).map((r) => ({ pol: n.metadata.name, rule: r })));
  const mentions = (r: NetPolRule, port: number) => (r.ports ?? []).some((p) => p.port === port) || (r.ports ?? []).length === 0;

  for (const p of pods) {
    const id = `${p.workload.kind}/${p.workload.metadata.name}`;
    const rules = rulesFor(p);
    if (rules.length === 0) {
      problems.push(`${id}: no NetworkPolicy with Ingress selects these pods`);
      continue;
    }
    const isMesh = matches(opts.meshLabel, p.labels);
    const isControlPlane = p.spec.containers.some((c) => c.ports?.some((x) => x.containerPort === opts.controlPlanePort));
    const guarded = isMesh ? opts.meshPort : isControlPlane ? opts.controlPlanePort : undefined;
    if (guarded !== undefined) {
      const open = rules.filter(({ rule }) => mentions(rule, guarded));
      if (open.length === 0) problems.push(`${id}: port ${guarded} is not allowed from mesh pods`);
      for (const { pol, rule } of open) if (!onlyMesh(rule)) problems.push(`${id}: NetworkPolicy ${pol} lets non-mesh peers reach port ${guarded}`);
    }
    // Metrics: scrapeable from the monitoring namespace, and from nowhere else.
    const scrapePort = !opts.scrape ? undefined : isMesh ? opts.scrape.sidecarPort : isControlPlane ? opts.scrape.controlPlanePort : undefined;
    if (opts.scrape && scrapePort !== undefined) {
      const ns = opts.scrape.namespace;
      const fromMonitoring = (r: NetPolRule) =>
        (r.from ?? []).length > 0 && (r.from ?? []).every((f) => !f.ipBlock && matches(ns, (f.namespaceSelector as { matchLabels?: Labels } | undefined)?.matchLabels ?? {}));
      const open = rules.filter(({ rule }) => mentions(rule, scrapePort));
      if (!open.some(({ rule }) => fromMonitoring(rule))) problems.push(`${id}: metrics port ${scrapePort} is not allowed from the monitoring namespace`);
      for (const { pol, rule } of open) if (!fromMonitoring(rule)) problems.push(`${id}: NetworkPolicy ${pol} lets any peer reach metrics port ${scrapePort}`);
    }
    if (isMesh) {
      for (const port of opts.publicPorts) {
        if (!rules.some(({ rule }) => !rule.from && (rule.ports ?? []).some((x) => x.port === port))) problems.push(`${id}: public port ${port} is not open to everyone`);
      }
    }
  }
  return problems;
}
